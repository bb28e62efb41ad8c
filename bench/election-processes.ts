/**
 * Graceful handover with three participants as separate OS processes
 * (issue 14): prints one JSON line.
 *
 *   npm run bench:election-processes -- [--backend doozer|etcd|postgres] [--rounds N]
 *
 * Three child processes (bench/election/child.ts) on one server on
 * 127.0.0.1 (default: the embedded Doozer server). Each round the master is
 * told `resign` on stdin; the figure is the time from just before its
 * `resign()` call to another process's `becomeMaster`, both taken on
 * CLOCK_MONOTONIC in the children. Before the next round, every process has
 * reported the new master (not timed). Timing: leaseMs 3000,
 * renewDeadlineMs 2000, retryPeriodMs 500, as in `bench:election`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BACKENDS, type BackendName } from './election/connect.js';
import { MissingServerError, startBackend } from './election/servers.js';
import { summary } from './election/stats.js';

const TIMING = { leaseMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };
const CHILD = fileURLToPath(new URL('./election/child.js', import.meta.url));

function usage(message: string): never {
  process.stderr.write(`bench:election-processes: ${message}\n`);
  process.exit(2);
}

interface Proc {
  child: ChildProcess;
  address: string;
  /** The master this process last reported ('' before any). */
  sees: string;
}

interface Event {
  ev: string;
  t: number;
  master?: string;
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        backend: { type: 'string', default: 'doozer' },
        rounds: { type: 'string', default: '200' },
      },
      strict: true,
    });
  } catch (err) {
    return usage((err as Error).message);
  }
})();
if (!BACKENDS.includes(values.backend as BackendName)) {
  usage(
    `unknown --backend ${JSON.stringify(values.backend)}: expected one of ${BACKENDS.join(', ')}`,
  );
}
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) usage(`--rounds must be a positive integer`);

const backend = await startBackend(values.backend as BackendName).catch((err: unknown) => {
  if (err instanceof MissingServerError) usage(err.message.replace(/^bench:election /, ''));
  throw err;
});
const server = await backend.server();
const procs: Proc[] = [];
let listener: ((p: Proc, e: Event) => void) | null = null;
/** Resolves with the first event for which `match` holds (60 s at most). */
const next = (what: string, match: (p: Proc, e: Event) => boolean): Promise<[Proc, Event]> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${backend.name}: ${what}: not within 60 s`)),
      60_000,
    );
    listener = (p, e) => {
      if (!match(p, e)) return;
      listener = null;
      clearTimeout(timer);
      resolve([p, e]);
    };
  });

const samples: number[] = [];
try {
  const ready = Promise.all(
    [0, 1, 2].map(async (i) => {
      const address = `127.0.0.1:${30_000 + i}`;
      const child = spawn(
        process.execPath,
        [
          CHILD,
          backend.name,
          server.uri,
          `processes-${process.pid}`,
          address,
          ...Object.values(TIMING).map(String),
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      const p: Proc = { child, address, sees: '' };
      procs.push(p);
      let isReady!: () => void;
      const r = new Promise<void>((resolve) => (isReady = resolve));
      createInterface({ input: child.stdout }).on('line', (line) => {
        const e = JSON.parse(line) as Event;
        if (e.ev === 'ready') isReady();
        if (e.ev === 'master') p.sees = p.address;
        if (e.ev === 'slave') p.sees = e.master ?? '';
        listener?.(p, e);
      });
      await r;
    }),
  );
  await ready;
  const isMaster = (p: Proc): boolean => p.sees === p.address;
  if (!procs.some(isMaster)) await next('first master', () => procs.some(isMaster));
  let master = procs.find(isMaster)!;
  for (let i = 0; i < rounds; i++) {
    // Every process follows the current master before the round starts.
    if (!procs.every((p) => p.sees === master.address)) {
      await next(`round ${i}: all follow`, () => procs.every((p) => p.sees === master.address));
    }
    let resigningAt = NaN;
    const elected = next(`round ${i}: new master`, (p, e) => {
      if (e.ev === 'resigning') resigningAt = e.t;
      return e.ev === 'master' && p !== master;
    });
    master.child.stdin!.write('resign\n');
    const [successor, e] = await elected;
    samples.push(e.t - resigningAt);
    master = successor;
  }
} finally {
  const exits = procs
    .filter((p) => p.child.exitCode === null && p.child.signalCode === null)
    .map((p) => once(p.child, 'exit'));
  for (const p of procs) p.child.kill('SIGTERM');
  await Promise.all(exits);
  await server.close();
  await backend.shutdown();
}
process.stdout.write(
  `${JSON.stringify({ bench: 'election-processes', backend: backend.name, node: process.version, participants: 3, ...TIMING, handoverMs: summary(samples) })}\n`,
);

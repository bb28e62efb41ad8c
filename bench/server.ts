/**
 * Benchmark of the embedded Doozer server (`npm run bench:server`).
 *
 * Three processes, so the server has a core of its own: this one
 * orchestrates, a forked child runs the server (DoozerServer, in process, so
 * it can report its RSS after a full GC), another forked child generates
 * load with raw pipelined frames (no client library in the way).
 *
 * Measures, over loopback:
 * - GET, SET and WAIT ops/s with 1 and with 64 concurrent connections, each
 *   keeping `pipeline` requests in flight (WAITs are answered from history,
 *   each on its own file);
 * - SET ops/s (1 connection) while 10,000 WAITs are parked on other files,
 *   against the same without them (the waiter index at work);
 * - the server's RSS (and V8 heap in use) after a full GC: idle, with
 *   100,000 files of 64 bytes, and with 10,000 waiting WAITs on top;
 * - three attacks (deep paths, fan-out to readers that never read, past-rev
 *   reads), each against a fresh server: the healthy client's GET latency
 *   and the server's peak RSS (see `server-attacks.ts`).
 *
 * Prints exactly one JSON line on stdout.
 *
 * Environment: BENCH_PHASE_MS (measured time per phase, default 1500),
 * BENCH_PIPELINE (requests in flight per connection, default 16),
 * BENCH_ONLY (`throughput` or `attacks`: run only those phases),
 * BENCH_ATTACKS (a comma-separated subset of the attacks), and the attack
 * settings described in `server-attacks.ts`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DoozerServer, encodeRequest, type RawRequest } from '../lib/testing/index.js';
import { FrameDecoder, Verb } from '../lib/wire/index.js';
import {
  ATTACKS,
  attacker,
  runAttack,
  type AttackHarness,
  type AttackKind,
} from './server-attacks.js';

const PHASE_MS = Number(process.env.BENCH_PHASE_MS ?? 1500);
const PIPELINE = Number(process.env.BENCH_PIPELINE ?? 16);
const ONLY = process.env.BENCH_ONLY;
const FILES = 100_000;
const WAITS = 10_000;
const VALUE = Buffer.alloc(64, 'v');

type ToServer = { cmd: 'rss' } | { cmd: 'stats' };
type FromServer = { port: number } | { rss: number; heap: number } | { stats: unknown };
type ToLoad =
  | { cmd: 'phase'; kind: 'get' | 'set' | 'wait'; clients: number; firstRev: number }
  | { cmd: 'fill'; files: number }
  | { cmd: 'park'; waits: number; rev: number }
  | { cmd: 'prepare'; prefix: string; files: number };
type FromLoad = { opsPerSec: number } | { done: true; firstRev?: number };

const MiB = 1024 * 1024;
const round = (n: number): number => Math.round(n);

// ---------------------------------------------------------------- server child

async function serve(): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const server = await DoozerServer.start({ heartbeatMs: 1000 });
  process.send!({ port: server.port } satisfies FromServer);
  process.on('message', (m: ToServer) => {
    if (m.cmd === 'rss') {
      gc();
      gc();
      const mem = process.memoryUsage();
      process.send!({ rss: mem.rss, heap: mem.heapUsed } satisfies FromServer);
    } else {
      process.send!({ stats: server.stats() } satisfies FromServer);
    }
  });
  process.on('disconnect', () => void server.close().then(() => process.exit(0)));
}

// ---------------------------------------------------------------- load child

/** A connection that keeps `window` requests in flight, counting answers. */
class Pipe {
  answered = 0;
  private readonly decoder = new FrameDecoder();
  private next = 0;
  private stopped = false;

  private constructor(
    private readonly socket: Socket,
    private readonly frames: Buffer[],
  ) {}

  static async open(port: number, frames: Buffer[]): Promise<Pipe> {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true });
    await once(socket, 'connect');
    return new Pipe(socket, frames);
  }

  /** Sends requests, one more for each answer, until {@link stop}. */
  run(window: number, onError: (payload: Uint8Array) => void): void {
    this.socket.on('data', (chunk: Buffer) => {
      let n = 0;
      this.decoder.push(chunk, (payload) => {
        // An error answer has field 100 (err_code): tag 0xa0 0x06.
        if (this.answered === 0) onError(payload);
        n++;
      });
      this.answered += n;
      if (!this.stopped && n > 0) this.send(n);
    });
    this.send(window);
  }

  stop(): void {
    this.stopped = true;
  }

  async drainAndClose(): Promise<void> {
    this.stop();
    this.socket.destroy();
    await once(this.socket, 'close');
  }

  private send(n: number): void {
    const batch: Buffer[] = [];
    for (let i = 0; i < n; i++) batch.push(this.frames[this.next++ % this.frames.length]!);
    this.socket.write(n === 1 ? batch[0]! : Buffer.concat(batch));
  }
}

function frames(reqs: RawRequest[]): Buffer[] {
  return reqs.map((r) => encodeRequest({ tag: 1, ...r }));
}

function isError(payload: Uint8Array): boolean {
  for (let i = 0; i + 1 < payload.length; i++)
    if (payload[i] === 0xa0 && payload[i + 1] === 0x06) return true;
  return false;
}

/** Sends `reqs` over one connection, `window` at a time, and resolves when all are answered. */
async function pump(port: number, reqs: Buffer[], window: number): Promise<void> {
  const pipe = await Pipe.open(port, reqs);
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (pipe.answered >= reqs.length) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
    pipe.run(Math.min(window, reqs.length), (p) => {
      if (isError(p)) reject(new Error('the server answered an error'));
    });
  });
  await pipe.drainAndClose();
}

function load(port: number): void {
  const parked: Socket[] = [];
  let prepared: { prefix: string; files: number } = { prefix: '/bench/get', files: 1000 };
  process.on('message', (m: ToLoad) => {
    void (async () => {
      if (m.cmd === 'prepare') {
        prepared = { prefix: m.prefix, files: m.files };
        const reqs = Array.from({ length: m.files }, (_, i) => ({
          verb: Verb.SET,
          path: `${m.prefix}/${i}`,
          rev: -1,
          value: VALUE,
        }));
        await pump(port, frames(reqs), 256);
        process.send!({ done: true } satisfies FromLoad);
      } else if (m.cmd === 'fill') {
        const reqs = Array.from({ length: m.files }, (_, i) => ({
          verb: Verb.SET,
          path: `/bench/files/d${Math.floor(i / 1000)}/f${i}`,
          rev: -1,
          value: VALUE,
        }));
        await pump(port, frames(reqs), 256);
        process.send!({ done: true } satisfies FromLoad);
      } else if (m.cmd === 'park') {
        for (let c = 0; c < 10; c++) {
          const socket = connect({ port, host: '127.0.0.1', noDelay: true });
          await once(socket, 'connect');
          const per = m.waits / 10;
          const reqs = Array.from({ length: per }, (_, i) =>
            encodeRequest({
              tag: i + 1,
              verb: Verb.WAIT,
              path: `/bench/parked/c${c}/w${i}`,
              rev: m.rev,
            }),
          );
          socket.write(Buffer.concat(reqs));
          parked.push(socket);
        }
        process.send!({ done: true } satisfies FromLoad);
      } else {
        const { kind, clients } = m;
        const pipes = await Promise.all(
          Array.from({ length: clients }, (_, c) => {
            const reqs: RawRequest[] = Array.from({ length: 1000 }, (_, i) => {
              const k = (i * 7919 + c * 104729) % prepared.files;
              if (kind === 'get') return { verb: Verb.GET, path: `${prepared.prefix}/${k}` };
              if (kind === 'wait')
                return { verb: Verb.WAIT, path: `${prepared.prefix}/${k}`, rev: m.firstRev };
              return {
                verb: Verb.SET,
                path: `/bench/set/c${c}/f${i % 100}`,
                rev: -1,
                value: VALUE,
              };
            });
            return Pipe.open(port, frames(reqs));
          }),
        );
        let failed = false;
        for (const p of pipes) p.run(PIPELINE, (payload) => (failed ||= isError(payload)));
        // Warm up, then count answers over the phase.
        await new Promise((r) => setTimeout(r, Math.min(300, PHASE_MS / 4)));
        const start = pipes.reduce((n, p) => n + p.answered, 0);
        const t0 = performance.now();
        await new Promise((r) => setTimeout(r, PHASE_MS));
        const ops = pipes.reduce((n, p) => n + p.answered, 0) - start;
        const elapsed = performance.now() - t0;
        await Promise.all(pipes.map((p) => p.drainAndClose()));
        if (failed) throw new Error(`${kind}: the server answered an error`);
        process.send!({ opsPerSec: (ops * 1000) / elapsed } satisfies FromLoad);
      }
    })().catch((e: unknown) => {
      console.error(e);
      process.exit(1);
    });
  });
  process.on('disconnect', () => {
    for (const s of parked) s.destroy();
    process.exit(0);
  });
  process.send!({ done: true } satisfies FromLoad);
}

// ---------------------------------------------------------------- orchestrator

function ask<T>(child: ChildProcess, message?: ToServer | ToLoad): Promise<T> {
  const answer = once(child, 'message').then(([m]) => m as T);
  if (message) child.send(message);
  return answer;
}

/** The throughput and memory phases. */
async function throughput(self: string): Promise<Record<string, unknown>> {
  const { child: server, port } = await startServerChild(self);
  const loader = fork(self, ['--load', String(port)], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await ask(loader);
  const memory = async (): Promise<{ rss: number; heap: number }> => {
    const m = await ask<{ rss: number; heap: number }>(server, { cmd: 'rss' });
    return { rss: round(m.rss / MiB), heap: round(m.heap / MiB) };
  };
  const rev = async (): Promise<number> =>
    (await ask<{ stats: { rev: number } }>(server, { cmd: 'stats' })).stats.rev;
  try {
    const idle = await memory();
    const ops: Record<'get' | 'set' | 'wait', Record<string, number>> = {
      get: {},
      set: {},
      wait: {},
    };
    const phase = async (
      kind: 'get' | 'set' | 'wait',
      clients: number,
      firstRev = 0,
    ): Promise<number> =>
      round(
        (await ask<{ opsPerSec: number }>(loader, { cmd: 'phase', kind, clients, firstRev }))
          .opsPerSec,
      );

    await ask(loader, { cmd: 'prepare', prefix: '/bench/get', files: 1000 });
    for (const clients of [1, 64]) ops.get[clients] = await phase('get', clients);
    for (const clients of [1, 64]) {
      // Fresh files each time, so every WAIT's answer is still in history.
      const first = (await rev()) + 1;
      await ask(loader, { cmd: 'prepare', prefix: `/bench/wait${clients}`, files: 1000 });
      ops.wait[clients] = await phase('wait', clients, first);
    }
    for (const clients of [1, 64]) ops.set[clients] = await phase('set', clients);

    await ask(loader, { cmd: 'fill', files: FILES });
    const withFiles = await memory();
    await ask(loader, { cmd: 'park', waits: WAITS, rev: (await rev()) + 1_000_000 });
    for (;;) {
      const s = (await ask<{ stats: { waiting: number } }>(server, { cmd: 'stats' })).stats;
      if (s.waiting >= WAITS) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const withWaits = await memory();
    const setWithWaits = await phase('set', 1);

    return {
      phaseMs: PHASE_MS,
      pipeline: PIPELINE,
      opsPerSec: ops,
      setOpsPerSecWith10kWaits: setWithWaits,
      rssMiB: { idle: idle.rss, files100k: withFiles.rss, files100kAndWaits10k: withWaits.rss },
      heapMiB: { idle: idle.heap, files100k: withFiles.heap, files100kAndWaits10k: withWaits.heap },
    };
  } finally {
    loader.disconnect();
    server.disconnect();
    await Promise.all([once(loader, 'exit'), once(server, 'exit')]);
  }
}

const CHILD_STDIO = ['ignore', 'ignore', 'inherit', 'ipc'] as const;

async function startServerChild(self: string): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(self, ['--serve'], { stdio: [...CHILD_STDIO] });
  const { port } = await ask<{ port: number }>(child);
  return { child, port };
}

async function main(): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const result: Record<string, unknown> = { bench: 'server', node: process.version };
  if (ONLY !== 'attacks') Object.assign(result, await throughput(self));
  if (ONLY !== 'throughput') {
    const harness: AttackHarness = {
      startServer: () => startServerChild(self),
      startAttacker: (kind, port) =>
        fork(self, ['--attack', kind, String(port)], { stdio: [...CHILD_STDIO] }),
      collect: (server) => ask(server, { cmd: 'rss' }),
      stats: async (server) =>
        (await ask<{ stats: { connections: number; waiting: number } }>(server, { cmd: 'stats' }))
          .stats,
    };
    const attacks: Record<string, unknown> = {};
    const chosen = process.env.BENCH_ATTACKS?.split(',') ?? ATTACKS;
    for (const kind of ATTACKS.filter((k) => chosen.includes(k))) {
      attacks[kind] = await runAttack(kind, harness);
    }
    result.attacks = attacks;
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

const mode = process.argv[2];
if (mode === '--serve') await serve();
else if (mode === '--load') load(Number(process.argv[3]));
else if (mode === '--attack') attacker(process.argv[3] as AttackKind, Number(process.argv[4]));
else await main();

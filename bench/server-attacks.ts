/**
 * The attack phases of `npm run bench:server`: what one hostile client can
 * make the embedded server spend, and what a healthy client sees meanwhile.
 *
 * Each attack gets a fresh server process (so its peak RSS, `VmHWM` in
 * `/proc/<pid>/status`, is that attack's), an attacker process, and a
 * healthy client in the orchestrating process that sends one small GET
 * every 2 ms, answered or not, and records how long each took. Per attack it reports the
 * healthy client's GET p50/p99/max, the server's RSS before, at its peak
 * and after the attacker left (after a full GC), and what the attacker saw.
 *
 * - `none`: no attack for `BENCH_ATTACK_MS`, the noise floor of this machine.
 * - `deepPath`: a SET whose path has `BENCH_DEEP_COMPONENTS` (default
 *   3,000,000) components, again and again, one at a time, for
 *   `BENCH_ATTACK_MS`.
 * - `fanOut`: `BENCH_FAN_HOLDERS` (default 70) connections that each park 3
 *   WAITs on one file and never read, then one SET of that file to a value
 *   of almost 16 MiB.
 * - `pastRevReads`: 2000 writes to fill the history, then one connection
 *   pipelining 20,000 GETs at a time, each pinned to another past rev, for
 *   `BENCH_ATTACK_MS`.
 *
 * Only the wire protocol and `stats()` are used, so the same phases run
 * against an older server build.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { fromBinary, isFieldSet } from '@bufbuild/protobuf';
import { encodeRequest, type RawRequest } from '../lib/testing/index.js';
import { FrameDecoder, ResponseSchema, Verb } from '../lib/wire/index.js';

export const ATTACKS = ['none', 'deepPath', 'fanOut', 'pastRevReads'] as const;
export type AttackKind = (typeof ATTACKS)[number];

const ATTACK_MS = Number(process.env.BENCH_ATTACK_MS ?? 2000);
const DEEP_COMPONENTS = Number(process.env.BENCH_DEEP_COMPONENTS ?? 3_000_000);
const FAN_HOLDERS = Number(process.env.BENCH_FAN_HOLDERS ?? 70);
const FAN_WAITS = 3;
const FAN_VALUE_BYTES = 16 * 1024 * 1024 - 1024;
const PAST_WRITES = 2000;
const PAST_GETS = 20_000;
/** The healthy client sends a GET this often. */
const HEALTHY_GAP_MS = 2;
/** The healthy client samples at least this long, attack or not. */
const MIN_SAMPLE_MS = 1000;

/** Orchestrator -> attacker. */
export type ToAttacker = { cmd: 'setup' } | { cmd: 'go' } | { cmd: 'leave' };
/** Attacker -> orchestrator. */
export type FromAttacker =
  { ready: true; waits?: number } | { done: true; seen: Record<string, number | string> };

/** What one attack phase reports. */
export interface AttackResult {
  healthyGetMs: { p50: number; p99: number; max: number; samples: number; failed: number };
  serverRssMiB: { before: number; peak: number; after: number };
  attacker: Record<string, number | string>;
}

// ---------------------------------------------------------------- attacker child

/** A raw connection that counts answers and error answers. */
class Line {
  answers = 0;
  errors = 0;
  /** The rev of the last answer that had one. */
  lastRev = 0;
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder(0xffffffff);
  private waiters: { n: number; resolve: () => void }[] = [];

  private constructor(readonly socket: Socket) {
    this.closed = new Promise((r) => socket.once('close', () => r()));
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk, (payload) => {
        const res = fromBinary(ResponseSchema, payload);
        this.answers++;
        if (isFieldSet(res, ResponseSchema.field.errCode)) this.errors++;
        if (isFieldSet(res, ResponseSchema.field.rev)) this.lastRev = Number(res.rev);
      });
      this.waiters = this.waiters.filter((w) =>
        this.answers >= w.n ? (w.resolve(), false) : true,
      );
    });
    void this.closed.then(() => {
      for (const w of this.waiters) w.resolve();
      this.waiters = [];
    });
  }

  static async open(port: number): Promise<Line> {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true });
    await once(socket, 'connect');
    return new Line(socket);
  }

  get open(): boolean {
    return !this.socket.destroyed;
  }

  /** Resolves once `n` answers in all have arrived, or the socket closed. */
  answered(n: number): Promise<void> {
    if (this.answers >= n || !this.open) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  send(reqs: RawRequest[]): void {
    this.socket.write(Buffer.concat(reqs.map((r) => encodeRequest({ tag: 1, ...r }))));
  }

  /** Sends one request and resolves with the new answer count (or on close). */
  async call(req: RawRequest): Promise<void> {
    const n = this.answers + 1;
    this.send([req]);
    await this.answered(n);
  }
}

/** The current store rev, read with REV over `line`. */
async function currentRev(line: Line): Promise<number> {
  await line.call({ verb: Verb.REV });
  return line.lastRev;
}

export function attacker(kind: AttackKind, port: number): void {
  const lines: Line[] = [];
  let setup: Promise<void> = Promise.resolve();
  const reply = (m: FromAttacker): void => void process.send!(m);
  const run = async (m: ToAttacker): Promise<void> => {
    if (m.cmd === 'setup') {
      if (kind === 'fanOut') {
        const control = await Line.open(port);
        lines.push(control);
        const rev = await currentRev(control);
        for (let h = 0; h < FAN_HOLDERS; h++) {
          const holder = await Line.open(port);
          holder.socket.pause(); // never reads
          holder.send(
            Array.from({ length: FAN_WAITS }, () => ({ verb: Verb.WAIT, path: '/fan/big', rev })),
          );
          lines.push(holder);
        }
        reply({ ready: true, waits: FAN_HOLDERS * FAN_WAITS });
      } else if (kind === 'pastRevReads') {
        const writer = await Line.open(port);
        lines.push(writer);
        writer.send(
          Array.from({ length: PAST_WRITES }, (_, i) => ({
            verb: Verb.SET,
            path: `/past/f${i % 100}`,
            rev: -1,
            value: `value ${i}`,
          })),
        );
        await writer.answered(PAST_WRITES);
        reply({ ready: true });
      } else {
        reply({ ready: true });
      }
    } else if (m.cmd === 'go') {
      const started = performance.now();
      const seen: Record<string, number | string> = {};
      if (kind === 'deepPath') {
        const line = await Line.open(port);
        lines.push(line);
        const path = `/deep${'/a'.repeat(DEEP_COMPONENTS)}`;
        const frame = encodeRequest({ tag: 1, verb: Verb.SET, path, rev: -1, value: 'x' });
        let rounds = 0;
        do {
          const n = line.answers + 1;
          line.socket.write(frame);
          await line.answered(n);
          rounds++;
        } while (line.open && performance.now() - started < ATTACK_MS);
        Object.assign(seen, { components: DEEP_COMPONENTS, pathBytes: path.length, sets: rounds });
        Object.assign(seen, { errorAnswers: line.errors, closed: line.open ? 'no' : 'yes' });
      } else if (kind === 'fanOut') {
        const writer = await Line.open(port);
        lines.push(writer);
        const value = Buffer.alloc(FAN_VALUE_BYTES, 'v');
        await writer.call({ verb: Verb.SET, path: '/fan/big', rev: -1, value });
        const holders = lines.slice(1, 1 + FAN_HOLDERS);
        Object.assign(seen, {
          holders: FAN_HOLDERS,
          waitsEach: FAN_WAITS,
          valueBytes: FAN_VALUE_BYTES,
          setAnsweredMs: Math.round(performance.now() - started),
        });
        // Give the server a moment to close the holders it is going to close.
        await new Promise((r) => setTimeout(r, 500));
        seen.holdersClosedByServer = holders.filter((h) => !h.open).length;
      } else if (kind === 'none') {
        await new Promise((r) => setTimeout(r, ATTACK_MS));
      } else {
        const reader = await Line.open(port);
        lines.push(reader);
        let rounds = 0;
        do {
          const rev = await currentRev(reader);
          const base = reader.answers;
          reader.send(
            Array.from({ length: PAST_GETS }, (_, i) => ({
              verb: Verb.GET,
              path: `/past/f${i % 100}`,
              rev: rev - 1 - ((i * 37) % 1800),
            })),
          );
          await reader.answered(base + PAST_GETS);
          rounds++;
        } while (reader.open && performance.now() - started < ATTACK_MS);
        Object.assign(seen, { getsPerRound: PAST_GETS, rounds, errorAnswers: reader.errors });
        seen.closed = reader.open ? 'no' : 'yes';
      }
      seen.attackMs = Math.round(performance.now() - started);
      reply({ done: true, seen });
    } else {
      for (const l of lines) l.socket.destroy();
      await Promise.all(lines.map((l) => l.closed));
      process.exit(0);
    }
  };
  process.on('message', (m: ToAttacker) => {
    setup = setup.then(() => run(m));
    setup.catch((e: unknown) => {
      console.error(e);
      process.exit(1);
    });
  });
  process.on('disconnect', () => process.exit(0));
  reply({ ready: true });
}

// ---------------------------------------------------------------- healthy client

/**
 * Sends one GET every 2 ms on one connection whatever happens (open loop, so
 * a stall counts once for every GET it delays, not once), and records each
 * GET's time from being sent to being answered.
 */
class HealthyClient {
  readonly latencies: number[] = [];
  failed = 0;
  private readonly decoder = new FrameDecoder(0xffffffff);
  private readonly sentAt = new Map<number, number>();
  private tag = 0;
  private readonly timer: NodeJS.Timeout;
  private drained: (() => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('error', () => {});
    socket.on('close', () => {
      this.failed += this.sentAt.size;
      this.sentAt.clear();
      this.drained?.();
    });
    socket.on('data', (chunk: Buffer) =>
      this.decoder.push(chunk, (payload) => {
        const tag = fromBinary(ResponseSchema, payload).tag;
        const at = this.sentAt.get(tag);
        if (at === undefined) return;
        this.sentAt.delete(tag);
        this.latencies.push(performance.now() - at);
        if (this.sentAt.size === 0) this.drained?.();
      }),
    );
    this.timer = setInterval(() => this.send(), HEALTHY_GAP_MS);
  }

  static async start(port: number): Promise<HealthyClient> {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true });
    await once(socket, 'connect');
    return new HealthyClient(socket);
  }

  /** Stops sending, waits for the GETs in flight to be answered, closes. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (this.sentAt.size > 0 && !this.socket.destroyed) {
      await new Promise<void>((resolve) => (this.drained = resolve));
    }
    this.socket.destroy();
  }

  private send(): void {
    if (this.socket.destroyed) return;
    this.tag = (this.tag % 0x7fffffff) + 1;
    this.sentAt.set(this.tag, performance.now());
    this.socket.write(encodeRequest({ tag: this.tag, verb: Verb.GET, path: '/ctl/name' }));
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// ---------------------------------------------------------------- orchestrator

/** `VmRSS` and `VmHWM` (peak) of `pid`, in MiB. */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** What the orchestrator needs from the bench's server and attacker children. */
export interface AttackHarness {
  /** Forks a fresh server child and resolves with it and its port. */
  startServer(): Promise<{ child: ChildProcess; port: number }>;
  /** Forks an attacker child for `kind` against `port`. */
  startAttacker(kind: AttackKind, port: number): ChildProcess;
  /** Asks the server child for a full GC, then resolves. */
  collect(server: ChildProcess): Promise<void>;
  /** The server child's `stats()`. */
  stats(server: ChildProcess): Promise<{ connections: number; waiting: number }>;
}

function next<T>(child: ChildProcess, message?: ToAttacker): Promise<T> {
  const answer = once(child, 'message').then(([m]) => m as T);
  if (message) child.send(message);
  return answer;
}

async function until(cond: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error('bench: timed out waiting on the server');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs one attack phase against a fresh server. */
export async function runAttack(kind: AttackKind, h: AttackHarness): Promise<AttackResult> {
  const { child: server, port } = await h.startServer();
  const pid = server.pid!;
  try {
    await h.collect(server);
    const before = memoryOf(pid).rss;
    const attack = h.startAttacker(kind, port);
    await next(attack);
    const ready = await next<{ waits?: number }>(attack, { cmd: 'setup' });
    if (ready.waits) await until(async () => (await h.stats(server)).waiting >= ready.waits!);
    const healthy = await HealthyClient.start(port);
    const started = performance.now();
    const done = await next<{ seen: Record<string, number | string> }>(attack, { cmd: 'go' });
    const left = MIN_SAMPLE_MS - (performance.now() - started);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
    await healthy.stop();
    const peak = memoryOf(pid).peak;
    const exited = once(attack, 'exit');
    attack.send({ cmd: 'leave' } satisfies ToAttacker);
    await exited;
    await until(async () => (await h.stats(server)).connections === 0);
    await h.collect(server);
    const after = memoryOf(pid).rss;
    const sorted = [...healthy.latencies].sort((a, b) => a - b);
    const ms = (n: number): number => Math.round(n * 100) / 100;
    return {
      healthyGetMs: {
        p50: ms(percentile(sorted, 50)),
        p99: ms(percentile(sorted, 99)),
        max: ms(sorted.at(-1) ?? NaN),
        samples: sorted.length,
        failed: healthy.failed,
      },
      serverRssMiB: {
        before: Math.round(before),
        peak: Math.round(peak),
        after: Math.round(after),
      },
      attacker: done.seen,
    };
  } finally {
    const exited = once(server, 'exit');
    server.disconnect();
    await exited;
  }
}

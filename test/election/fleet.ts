import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../lib/election/index.js';

const PARTICIPANT = fileURLToPath(
  new URL('../../dist/test/fixtures/participant.js', import.meta.url),
);
/** The etcd participant (test/fixtures/etcd-participant.ts, compiled). */
export const ETCD_PARTICIPANT = fileURLToPath(
  new URL('../../dist/test/fixtures/etcd-participant.js', import.meta.url),
);
/** The PostgreSQL participant (test/fixtures/postgres-participant.ts, compiled). */
export const POSTGRES_PARTICIPANT = fileURLToPath(
  new URL('../../dist/test/fixtures/postgres-participant.js', import.meta.url),
);

/** A line printed by a participant, or a fault injected by the test. */
export interface FleetEvent {
  readonly ev: string;
  readonly t: number;
  readonly address: string;
  readonly token?: number;
  readonly until?: number;
  readonly master?: string;
  readonly message?: string;
}

/** One master interval on the shared monotonic timeline. */
export interface Interval {
  readonly address: string;
  readonly token: number;
  readonly start: number;
  readonly end: number;
}

export interface Timing {
  readonly leaseMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

/** Election participants in separate OS processes, and the timeline of their roles. */
export class Fleet {
  readonly events: FleetEvent[] = [];
  private readonly procs = new Map<string, ChildProcess>();
  private readonly exits = new Map<string, Promise<void>>();
  private listeners: (() => void)[] = [];

  constructor(
    private readonly uri: string,
    private readonly name: string,
    readonly timing: Timing,
    /** The participant program (compiled, in dist/): the Doozer one unless given. */
    private readonly participant: string = PARTICIPANT,
  ) {}

  /**
   * Starts a participant and resolves once it has joined the election
   * (within `joinTimeoutMs`: many Node processes booting at once on two
   * cores can take far longer than one).
   */
  async spawn(address: string, flags: string[] = [], joinTimeoutMs = 30_000): Promise<void> {
    const { leaseMs, renewDeadlineMs, retryPeriodMs } = this.timing;
    const child = spawn(
      process.execPath,
      [
        this.participant,
        this.uri,
        this.name,
        address,
        String(leaseMs),
        String(renewDeadlineMs),
        String(retryPeriodMs),
        ...flags,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    this.procs.set(address, child);
    this.exits.set(address, new Promise((resolve) => child.once('exit', () => resolve())));
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        this.record({ ...JSON.parse(line), address } as FleetEvent);
      } catch {
        this.record({ ev: 'noise', t: systemClock.now(), address, message: line });
      }
    });
    await this.until(
      () =>
        this.events.some((e) => e.address === address && (e.ev === 'ready' || e.ev === 'fatal')),
      `${address} to join`,
      joinTimeoutMs,
    );
  }

  /** Sends a signal; a SIGKILL is recorded on the timeline (the process can no longer speak). */
  signal(address: string, signal: NodeJS.Signals): void {
    const child = this.procs.get(address);
    if (!child) throw new Error(`no participant ${address}`);
    if (signal === 'SIGKILL') this.record({ ev: 'killed', t: systemClock.now(), address });
    child.kill(signal);
  }

  /** Writes a command line (`resign`, `force`, `close`) to a participant. */
  send(address: string, command: string): void {
    this.procs.get(address)?.stdin?.write(`${command}\n`);
  }

  /** Records a fault injected by the test, to measure recovery from. */
  fault(what: string): number {
    const t = systemClock.now();
    this.record({ ev: 'fault', t, address: '-', message: what });
    return t;
  }

  /** The participant that is master now (by the last transitions), if any. */
  master(): string | undefined {
    const open = this.intervals().filter((i) => i.end === Infinity);
    return open.at(-1)?.address;
  }

  /** Master intervals from the transitions seen so far; an open one ends at Infinity. */
  intervals(): Interval[] {
    const open = new Map<string, { token: number; start: number }>();
    const out: Interval[] = [];
    for (const e of this.events) {
      if (e.ev === 'master') {
        open.set(e.address, { token: e.token!, start: e.t });
      } else if ((e.ev === 'end' || e.ev === 'killed') && open.has(e.address)) {
        const o = open.get(e.address)!;
        if (e.ev === 'end' && e.token !== o.token) continue;
        out.push({ address: e.address, token: o.token, start: o.start, end: e.until ?? e.t });
        open.delete(e.address);
      }
    }
    for (const [address, o] of open) out.push({ address, ...o, end: Infinity });
    return out.sort((a, b) => a.start - b.start);
  }

  /** Throws if two master intervals overlap on the timeline. */
  assertNoOverlap(): void {
    const iv = this.intervals();
    for (let i = 0; i < iv.length; i++) {
      for (let j = i + 1; j < iv.length; j++) {
        const a = iv[i]!;
        const b = iv[j]!;
        if (a.start < b.end && b.start < a.end) {
          throw new Error(
            `two masters at once: ${a.address} term ${a.token} [${a.start.toFixed(1)}, ${a.end.toFixed(1)}] and ${b.address} term ${b.token} [${b.start.toFixed(1)}, ${b.end.toFixed(1)}]`,
          );
        }
      }
    }
  }

  /** The first master that started after time `t`, waiting for it up to `timeoutMs`. */
  async nextMasterAfter(t: number, timeoutMs = 30_000): Promise<Interval> {
    let found: Interval | undefined;
    await this.until(
      () => (found = this.intervals().find((i) => i.start > t)) !== undefined,
      `a master after t=${t.toFixed(1)}`,
      timeoutMs,
    );
    return found!;
  }

  /** Waits until `cond()` holds; re-checked on every event the fleet records. */
  until(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== check);
        reject(new Error(`timed out waiting for ${what}; events:\n${this.dump()}`));
      }, timeoutMs);
      const check = (): void => {
        if (!cond()) return;
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== check);
        resolve();
      };
      this.listeners.push(check);
    });
  }

  /** Holds a fault for `ms` of real time (a fault's duration is the one thing that must take time). */
  hold(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  dump(): string {
    const t0 = this.events[0]?.t ?? 0;
    return this.events
      .map(
        (e) =>
          `${(e.t - t0).toFixed(1).padStart(9)} ${e.address} ${e.ev} ${e.token ?? e.master ?? e.message ?? ''}`,
      )
      .join('\n');
  }

  /** Kills every participant and waits for them to exit. */
  async close(): Promise<void> {
    for (const child of this.procs.values()) if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.all(this.exits.values());
    for (const child of this.procs.values()) child.stdin?.destroy();
    this.procs.clear();
  }

  private record(e: FleetEvent): void {
    this.events.push(e);
    for (const l of [...this.listeners]) l();
  }
}

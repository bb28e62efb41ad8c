/**
 * Engines on the in-memory store, on manual clocks. The memory store answers
 * within the event loop's microtasks and never on a timer, so "the I/O a
 * clock step waits for" is done once the loop has gone idle: `settle()`
 * lets it get there (running zero-delay timers, such as a jitter of 0 ms,
 * on the way) before a test moves a clock again.
 */
import {
  MasterElection,
  type MasterStepDownError,
  type MasterElectionEventReceiver,
  type MasterElectionOptions,
  type MasterTerm,
} from '../../../lib/election/index.js';
import { ManualClock } from '../../../lib/testing/manual-clock.js';
import { MemoryElectionStore, type MemoryStoreOptions } from '../../../lib/testing/memory-store.js';
import { Recorder } from '../recorder.js';

export const NAME = 'jobs';
export const TIMING = { leaseMs: 10_000, renewDeadlineMs: 7_000, retryPeriodMs: 2_000 };

export interface Member {
  readonly election: MasterElection;
  readonly rec: Recorder;
  readonly clock: ManualClock;
}

export interface JoinOptions extends MasterElectionOptions {
  readonly participating?: boolean;
  readonly clock?: ManualClock;
  readonly name?: string;
  readonly receiver?: Partial<MasterElectionEventReceiver>;
  /** Do not call start() (a test that checks what open() does alone). */
  readonly noStart?: boolean;
}

/** Why a term ended (the reason of its signal). */
export const reason = (t: MasterTerm): string => (t.signal.reason as MasterStepDownError).reason;

const macrotask = (): Promise<void> => new Promise((r) => setImmediate(r));

export class Fleet {
  readonly store: MemoryElectionStore;
  /** The default clock of members and of the store (for `store` expiry). */
  readonly clock = new ManualClock();
  readonly members: Member[] = [];

  constructor(options: Omit<MemoryStoreOptions, 'clock'> = {}) {
    this.store = new MemoryElectionStore({ ...options, clock: this.clock });
  }

  async join(address: string, options: JoinOptions = {}): Promise<Member> {
    const clock = options.clock ?? this.clock;
    const rec = new Recorder();
    const override = options.receiver;
    const receiver: MasterElectionEventReceiver = override
      ? {
          becomeMaster: (t: MasterTerm) => rec.becomeMaster(t),
          becomeSlave: (m: string, token: number) => rec.becomeSlave(m, token),
          electionError: (e: Error) => rec.electionError(e),
          electionFatal: (e: Error) => rec.electionFatal(e),
          ...override,
        }
      : rec;
    const election = await MasterElection.open(this.store, {
      ...TIMING,
      electionJitterMs: 0,
      ...options,
      name: options.name ?? NAME,
      address,
      participating: options.participating ?? true,
      receiver,
      clock,
    });
    const m = { election, rec, clock };
    this.members.push(m);
    if (!options.noStart) await election.start();
    await this.settle();
    return m;
  }

  /** Lets every answer, watch event and notification in flight land (and zero-delay timers run). */
  async settle(): Promise<void> {
    const clocks = this.clocks();
    for (let i = 0; i < 20; i++) {
      for (const c of clocks) c.advance(0);
      await macrotask();
    }
    // (A write to a partitioned or paused store never lands: do not wait for it.)
    await Promise.race([
      Promise.all(this.members.map((m) => m.election.whenIdle())),
      (async () => {
        for (let i = 0; i < 5; i++) await macrotask();
      })(),
    ]);
    await macrotask();
  }

  /** Moves `clock` forward by `ms` in steps of `step`, settling after each. */
  async run(ms: number, step = 100, clock: ManualClock = this.clock): Promise<void> {
    for (let t = 0; t < ms; t += step) {
      clock.advance(Math.min(step, ms - t));
      await this.settle();
    }
  }

  /** Moves `clock` by exactly `ms` at once, then settles. */
  async advance(ms: number, clock: ManualClock = this.clock): Promise<void> {
    clock.advance(ms);
    await this.settle();
  }

  masters(): Member[] {
    return this.members.filter((m) => m.election.isMaster());
  }

  async close(): Promise<void> {
    const closing = this.members.map((m) => m.election.close());
    // close() is bounded on the members' clocks: let them run.
    for (let i = 0; i < 200; i++) {
      const done = await Promise.race([
        Promise.all(closing).then(() => true),
        macrotask().then(() => false),
      ]);
      if (done) return;
      for (const c of this.clocks()) c.advance(100);
    }
    await Promise.all(closing);
  }

  private clocks(): ManualClock[] {
    return [...new Set([this.clock, ...this.members.map((m) => m.clock)])];
  }
}

/**
 * An in-memory election store: many engines in one process, on a manual
 * clock if you like, with switches for the faults a real store has. For
 * unit tests of leader-only code (yours and ours); it implements the same
 * storage port as the Doozer, etcd and PostgreSQL backends and passes the
 * same contract suite.
 */
import { randomBytes } from 'node:crypto';
import { systemClock, type Clock } from '../election/clock.js';
import { ElectionConfigError, ElectionError, LockArgumentError } from '../election/errors.js';
import type {
  CreateResult,
  ElectionLock,
  ElectionStore,
  LockCallOptions,
  LockCapabilities,
  LockErrorKind,
  LockEvent,
  LockRead,
  LockRecord,
  LockRequest,
  LockSnapshot,
  LockStatus,
  LockTerm,
  LockVersion,
  RenewResult,
} from '../election/port.js';

/** A fault of the in-memory store (`kind` says whether the engine should retry). */
export class MemoryStoreError extends ElectionError {
  override name = 'MemoryStoreError';
  constructor(
    readonly kind: LockErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** Options of a {@link MemoryElectionStore}. */
export interface MemoryStoreOptions {
  /**
   * `observer` (default): like Doozer, participants time silent masters on
   * their own clocks. `store`: like etcd, the store ends a term whose holder
   * has not renewed for `leaseMs` on the store's `clock`.
   */
  readonly expiry?: LockCapabilities['expiry'];
  /** Default: false with `observer` expiry (like Doozer), true with `store` expiry. */
  readonly absentProvesNoMaster?: boolean;
  /** The store's own clock, for `store` expiry. Default: the system's monotonic clock. */
  readonly clock?: Clock;
}

/** Counters of one election's traffic, for tests and benchmarks. */
export interface MemoryStoreStats {
  reads: number;
  /** Write attempts (create, renew, release, depose), failed ones included. */
  writes: number;
  /** Writes that found the record changed (conflicts and lost races). */
  conflicts: number;
}

interface Version extends LockVersion {
  readonly store: MemoryElectionStore;
  readonly name: string;
  readonly epoch: number;
  readonly rev: number;
}

interface Term extends LockTerm {
  readonly version: Version;
  readonly lockId: string;
}

interface Entry {
  /** Store rev of the record's last change (0: never written in this epoch). */
  rev: number;
  record: LockRecord | null;
  liveness: string;
  /** Attempt number of the holder's last write. */
  attempt: number;
  expiry: unknown;
  stats: MemoryStoreStats;
}

type Listener = () => void;

const hasControlCharacter = (s: string): boolean =>
  [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

/**
 * The store. `openLock()` gives each participant its lock; the fault
 * switches act on every lock of the store (or on one, for `partition`).
 */
export class MemoryElectionStore implements ElectionStore {
  readonly backend = 'memory';
  readonly capabilities: LockCapabilities;
  private readonly clock: Clock;
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<Listener>();
  private readonly resetListeners = new Set<(reason: string) => void>();
  private watchesFail = false;
  private epoch = 1;
  private rev = 0;
  private paused: { promise: Promise<void>; resume: () => void } | null = null;
  private failNext: LockErrorKind | null = null;
  private loseAnswer = false;
  private dropChanges = 0;
  private readonly partitioned = new Set<string>();
  private readonly heldWrites = new Map<string, Promise<void>>();
  private healWaiters: (() => void)[] = [];
  private leaseMs = 0;

  constructor(options: MemoryStoreOptions = {}) {
    const expiry = options.expiry ?? 'observer';
    this.capabilities = {
      expiry,
      absentProvesNoMaster: options.absentProvesNoMaster ?? expiry === 'store',
    };
    this.clock = options.clock ?? systemClock;
  }

  async openLock(request: LockRequest): Promise<ElectionLock> {
    const { name } = request;
    if (
      typeof name !== 'string' ||
      name.length === 0 ||
      name.length > 256 ||
      hasControlCharacter(name)
    ) {
      throw new ElectionConfigError(
        'name',
        `invalid election name ${JSON.stringify(name)}: the memory store takes 1 to 256 characters without control characters`,
      );
    }
    this.leaseMs = Math.max(this.leaseMs, request.timing.leaseMs);
    await Promise.resolve();
    return new MemoryLock(this, request);
  }

  toString(): string {
    return `memory store (${this.capabilities.expiry} expiry)`;
  }

  // ------------------------------------------------------------ fault switches

  /** Every operation and event waits until {@link resume} (a store that stopped answering). */
  pause(): void {
    if (this.paused) return;
    let resume!: () => void;
    const promise = new Promise<void>((r) => (resume = r));
    this.paused = { promise, resume };
  }

  resume(): void {
    const p = this.paused;
    this.paused = null;
    p?.resume();
  }

  /** The next write (create, renew, release, depose) fails with a `kind` error and changes nothing. */
  failNextWrite(kind: LockErrorKind = 'transient'): void {
    this.failNext = kind;
  }

  /** The next write lands, but its caller gets a transient error instead of the answer. */
  loseNextAnswer(): void {
    this.loseAnswer = true;
  }

  /** The next `count` changes are not delivered to watchers (a lost notification); they see later ones. */
  dropNextChanges(count = 1): void {
    this.dropChanges += count;
  }

  /**
   * Every watch ends with a `reset`. With `loseState`, the store also forgets
   * every record and restarts its revisions (a server that restarted empty):
   * the next read of each lock reports `stateLost`.
   */
  reset(options: { loseState?: boolean } = {}): void {
    this.resetAll(options);
  }

  /**
   * While `on`, every watch ends with a `reset` as soon as it starts (a
   * store whose watch streams keep failing), reads still succeed.
   */
  resetEveryWatch(on: boolean): void {
    this.watchesFail = on;
    if (on) this.resetAll({});
  }

  /** @internal Whether {@link resetEveryWatch} is on. */
  get watchesFailAtOnce(): boolean {
    return this.watchesFail;
  }

  private resetAll(options: { loseState?: boolean }): void {
    if (options.loseState) {
      for (const e of this.entries.values()) this.clock.clearTimer(e.expiry);
      this.entries.clear();
      this.epoch++;
      this.rev = 0;
    }
    for (const fn of [...this.resetListeners])
      fn(options.loseState ? 'store lost its state' : 'reset');
  }

  /**
   * The next write of one lock (by its `id`) waits, before it reaches the
   * store, until the returned function is called: a slow request, while the
   * store, the lock's own watch and everyone else go on.
   */
  holdNextWrite(lockId: string): () => void {
    let release!: () => void;
    this.heldWrites.set(lockId, new Promise<void>((r) => (release = r)));
    return () => release();
  }

  /** @internal Waits out a {@link holdNextWrite} of `lockId`. */
  async writeHold(lockId: string): Promise<void> {
    const held = this.heldWrites.get(lockId);
    if (!held) return;
    this.heldWrites.delete(lockId);
    await held;
  }

  /** Cuts one lock off (by its `id`): its operations hang and its watch sees nothing, until {@link heal}. */
  partition(lockId: string): void {
    this.partitioned.add(lockId);
  }

  heal(lockId: string): void {
    this.partitioned.delete(lockId);
    for (const wake of this.healWaiters.splice(0)) wake();
    this.notify();
  }

  /**
   * Writes a master that is not one of ours and never proves it is alive
   * (an `unleased` record: a participant of the Go package on Doozer, or one
   * that died halfway through taking a term). Returns its fencing token.
   */
  writeLeaselessMaster(name: string, holder: string): number {
    const e = this.entry(name);
    const token = this.nextRev();
    const termId = `${this.epoch}:${token}:leaseless`;
    this.commit(name, e, { state: 'unleased', holder, holderId: '', token, termId }, true);
    return token;
  }

  /** The record of an election as the store holds it now (`null`: none). */
  peek(name: string): LockRecord | null {
    return this.entries.get(name)?.record ?? null;
  }

  /** Traffic counters of an election. */
  stats(name: string): MemoryStoreStats {
    return { ...this.entry(name).stats };
  }

  // ---------------------------------------------------------------- internals

  /** @internal */
  get currentEpoch(): number {
    return this.epoch;
  }

  /** @internal */
  entry(name: string): Entry {
    let e = this.entries.get(name);
    if (!e) {
      e = {
        rev: 0,
        record: null,
        liveness: `${this.epoch}:0`,
        attempt: 0,
        expiry: undefined,
        stats: { reads: 0, writes: 0, conflicts: 0 },
      };
      this.entries.set(name, e);
    }
    return e;
  }

  /** @internal Waits out a pause and a partition, then a turn of the event loop's microtasks. */
  async gate(lockId: string): Promise<void> {
    for (;;) {
      if (this.paused) await this.paused.promise;
      else if (this.partitioned.has(lockId))
        await new Promise<void>((r) => this.healWaiters.push(r));
      else break;
    }
    await Promise.resolve();
  }

  /** @internal Applies the write faults; returns whether the answer is to be lost. */
  writeFault(e: Entry): boolean {
    e.stats.writes++;
    const fail = this.failNext;
    if (fail) {
      this.failNext = null;
      throw new MemoryStoreError(fail, `memory store: injected ${fail} write failure`);
    }
    const lose = this.loseAnswer;
    this.loseAnswer = false;
    return lose;
  }

  /** @internal Records a change of an election and tells watchers. */
  commit(name: string, e: Entry, record: LockRecord | null, live: boolean): void {
    e.rev = ++this.rev;
    e.record = record;
    if (live) e.liveness = `${this.epoch}:${e.rev}`;
    this.armExpiry(name, e);
    this.notify();
  }

  /** @internal A new store rev for a term's token. */
  nextRev(): number {
    return this.rev + 1;
  }

  /** @internal */
  onChange(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** @internal */
  onReset(fn: (reason: string) => void): () => void {
    this.resetListeners.add(fn);
    return () => this.resetListeners.delete(fn);
  }

  /** @internal */
  isPartitioned(lockId: string): boolean {
    return this.partitioned.has(lockId);
  }

  private notify(): void {
    if (this.dropChanges > 0) {
      this.dropChanges--;
      return;
    }
    for (const fn of [...this.listeners]) fn();
  }

  /** Store expiry: a held record whose holder has not written for `leaseMs` is removed. */
  private armExpiry(name: string, e: Entry): void {
    if (this.capabilities.expiry !== 'store') return;
    this.clock.clearTimer(e.expiry);
    e.expiry = undefined;
    const r = e.record;
    if (!r || (r.state !== 'held' && r.state !== 'ended')) return;
    const rev = e.rev;
    e.expiry = this.clock.setTimer(() => {
      if (this.entries.get(name) === e && e.rev === rev) this.commit(name, e, null, true);
    }, this.leaseMs);
  }
}

class MemoryLock implements ElectionLock {
  readonly backend = 'memory';
  readonly id = randomBytes(8).toString('hex');
  readonly capabilities: LockCapabilities;
  private readonly name: string;
  private readonly address: string;
  private readonly participating: boolean;
  private seenEpoch = 0;
  private closed = false;

  constructor(
    private readonly store: MemoryElectionStore,
    request: LockRequest,
  ) {
    this.capabilities = store.capabilities;
    this.name = request.name;
    this.address = request.address;
    this.participating = request.participating;
  }

  async read(_options: LockCallOptions): Promise<LockRead> {
    await this.enter();
    const e = this.store.entry(this.name);
    e.stats.reads++;
    const epoch = this.store.currentEpoch;
    const stateLost = this.seenEpoch !== 0 && this.seenEpoch !== epoch;
    this.seenEpoch = epoch;
    return { ...this.snapshot(e), stateLost };
  }

  async *watch(from: LockVersion, signal: AbortSignal): AsyncIterable<LockEvent> {
    const base = this.version(from, 'from');
    let seen = base.rev;
    let wake: (() => void) | null = null;
    let reset: string | null =
      base.epoch === this.store.currentEpoch ? null : 'store lost its state';
    if (this.store.watchesFailAtOnce) reset ??= 'the watch stream failed';
    const poke = (): void => {
      wake?.();
      wake = null;
    };
    const offChange = this.store.onChange(poke);
    const offReset = this.store.onReset((reason) => {
      reset = reason;
      poke();
    });
    signal.addEventListener('abort', poke);
    try {
      while (!signal.aborted && !this.closed) {
        if (reset !== null) {
          yield { kind: 'reset', reason: reset };
          return;
        }
        const e = this.store.entry(this.name);
        if (e.rev !== seen && !this.store.isPartitioned(this.id)) {
          seen = e.rev;
          await this.store.gate(this.id);
          if (signal.aborted) return;
          yield { kind: 'change', snapshot: this.snapshot(this.store.entry(this.name)) };
          continue;
        }
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      offChange();
      offReset();
      signal.removeEventListener('abort', poke);
    }
  }

  async create(basis: LockVersion, _options: LockCallOptions): Promise<CreateResult> {
    const b = this.version(basis, 'basis');
    this.mayRun('create');
    await this.enterWrite();
    const e = this.store.entry(this.name);
    const lose = this.store.writeFault(e);
    const current = e.record;
    const free = this.key(e) === b.key || current?.state === 'released';
    if (!free || b.epoch !== this.store.currentEpoch) {
      e.stats.conflicts++;
      return this.answer(lose, { kind: 'lost' });
    }
    const token = this.store.nextRev();
    const termId = `${this.store.currentEpoch}:${token}:${this.id}`;
    e.attempt = 0;
    this.store.commit(
      this.name,
      e,
      { state: 'held', holder: this.address, holderId: this.id, token, termId },
      true,
    );
    return this.answer(lose, { kind: 'won', term: this.term(e, token, termId) });
  }

  async renew(term: LockTerm, attempt: number, _options: LockCallOptions): Promise<RenewResult> {
    const t = this.ownTerm(term);
    this.mayRun('renew');
    await this.enterWrite();
    const e = this.store.entry(this.name);
    const lose = this.store.writeFault(e);
    const r = e.record;
    if (!r || r.termId !== t.termId || r.state !== 'held') {
      e.stats.conflicts++;
      return this.answer(lose, { kind: 'lost', holder: r?.state === 'held' ? r.holder : '' });
    }
    if (this.key(e) !== t.version.key) {
      // Our own earlier write landed after its answer was lost.
      e.stats.conflicts++;
      return this.answer(lose, {
        kind: 'renewed',
        term: this.term(e, t.token, t.termId),
        attempt: e.attempt,
      });
    }
    e.attempt = attempt;
    this.store.commit(this.name, e, r, true);
    return this.answer(lose, { kind: 'renewed', term: this.term(e, t.token, t.termId), attempt });
  }

  async release(term: LockTerm, _options: LockCallOptions): Promise<'released' | 'not-held'> {
    const t = this.ownTerm(term);
    await this.enterWrite();
    const e = this.store.entry(this.name);
    const lose = this.store.writeFault(e);
    const r = e.record;
    if (!r || r.termId !== t.termId || (r.state !== 'held' && r.state !== 'ended')) {
      return this.answer(lose, 'not-held');
    }
    this.store.commit(this.name, e, { ...r, state: 'released' }, true);
    return this.answer(lose, 'released');
  }

  async depose(version: LockVersion, _options: LockCallOptions): Promise<'deposed' | 'changed'> {
    const v = this.version(version, 'version');
    await this.enterWrite();
    const e = this.store.entry(this.name);
    const lose = this.store.writeFault(e);
    const r = e.record;
    if (this.key(e) !== v.key || !r || (r.state !== 'held' && r.state !== 'unleased')) {
      e.stats.conflicts++;
      return this.answer(lose, 'changed');
    }
    // The holder may still act until its deadline: the liveness stays, so the way is free only after it.
    this.store.commit(this.name, e, { ...r, state: 'ended' }, false);
    return this.answer(lose, 'deposed');
  }

  classify(err: unknown): LockErrorKind {
    if (err instanceof MemoryStoreError) return err.kind;
    if (err instanceof LockArgumentError) return 'fatal';
    return 'transient';
  }

  status(): LockStatus {
    return this.store.isPartitioned(this.id)
      ? { connected: false, detail: 'partitioned' }
      : { connected: true };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.resolve();
  }

  toString(): string {
    return `memory election ${JSON.stringify(this.name)}`;
  }

  // ---------------------------------------------------------------- internals

  private async enter(): Promise<void> {
    if (this.closed) throw new MemoryStoreError('fatal', 'memory store: the lock is closed');
    await this.store.gate(this.id);
  }

  private async enterWrite(): Promise<void> {
    await this.store.writeHold(this.id);
    await this.enter();
  }

  private mayRun(what: string): void {
    if (!this.participating) {
      throw new LockArgumentError('participating', `a passive participant may not ${what} a term`);
    }
  }

  private answer<T>(lose: boolean, result: T): T {
    if (lose) throw new MemoryStoreError('transient', 'memory store: the answer was lost');
    return result;
  }

  private key(e: Entry): string {
    return `${this.store.currentEpoch}:${e.rev}`;
  }

  private snapshot(e: Entry): LockSnapshot {
    const version: Version = {
      key: this.key(e),
      store: this.store,
      name: this.name,
      epoch: this.store.currentEpoch,
      rev: e.rev,
    };
    return { version, record: e.record, liveness: e.liveness };
  }

  private term(e: Entry, token: number, termId: string): Term {
    return { token, termId, version: this.snapshot(e).version as Version, lockId: this.id };
  }

  private version(v: LockVersion, argument: string): Version {
    const x = v as Partial<Version> | null;
    if (!x || x.store !== this.store || x.name !== this.name || typeof x.key !== 'string') {
      throw new LockArgumentError(argument, `not a version of ${this.toString()} in this store`);
    }
    return x as Version;
  }

  private ownTerm(term: LockTerm): Term {
    const t = term as Partial<Term> | null;
    if (!t || t.lockId !== this.id) {
      throw new LockArgumentError('term', `not a term won through this lock (${this.toString()})`);
    }
    this.version(t.version as LockVersion, 'term');
    return t as Term;
  }
}

/**
 * The public election client on any {@link ElectionStore}: the API and
 * notifications of `MasterElectionClient`, run by the engine of this folder.
 */
import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs';
import {
  resolveElectionOptions,
  validateAddress,
  type ResolvedElectionOptions,
} from '../options.js';
import { ElectionConfigError } from '../errors.js';
import type { ElectionLock, ElectionStore, LockRecord } from '../port.js';
import type {
  ElectionState,
  MasterElectionEventReceiver,
  MasterElectionOptions,
  MasterTerm,
} from '../types.js';
import { namesMaster, type Phase } from './decide.js';
import { Notifier } from './notifier.js';
import { ElectionRunner } from './runner.js';
import {
  currentMaster,
  currentToken,
  electionState,
  termInForce,
  unhealthyReason,
  type ElectionHealth,
} from './state.js';

/** What {@link MasterElection.open} takes: the election, this participant, and the timing options. */
export interface MasterElectionOpenOptions extends MasterElectionOptions {
  /** The election's name (the store checks that it can hold it). */
  readonly name: string;
  /** The `host:port` this process advertises as master. */
  readonly address: string;
  /** False for a passive client that only follows (and may force elections). Default true. */
  readonly participating?: boolean;
  /** Notified of every change, in order. Default: none (use `state$` and the getters). */
  readonly receiver?: MasterElectionEventReceiver;
}

/** See {@link MasterElection.diagnostics}. */
export interface ElectionDiagnostics {
  /** `following`, `campaigning`, `deposing`, `master`, `closing` or `stopped`. */
  readonly phase: Phase['kind'];
  /** The token of the term this participant holds, announced or not (0: none). */
  readonly heldToken: number;
  /** Whether it knows what the store holds (false while resynchronising). */
  readonly synced: boolean;
  /** The key of the record's version as last seen (`''` before the first read). */
  readonly versionKey: string;
  /** The record as last seen. */
  readonly record: LockRecord | null;
  /** Election-clock time at which it last saw the record's liveness change. */
  readonly livenessSeenAt: number;
}

/** What a {@link MasterElection} is made of (see `prepare`). */
export interface ElectionInit {
  readonly lock: ElectionLock;
  readonly opts: ResolvedElectionOptions;
  readonly name: string;
  readonly address: string;
  readonly participating: boolean;
  readonly receiver: MasterElectionEventReceiver;
}

/**
 * What {@link MasterElection.forceMasterElection} did.
 * - `stepped-down`: this process was master; it stepped down and takes part in the new election.
 * - `deposed`: the master's term was ended (a new election follows).
 * - `superseded`: the term seen ended meanwhile (another term, a release, a
 *   deposition, a store that lost its state): a new election already happened.
 * - `no-master`: no master was known: nothing to force.
 * - `not-forced`: the master renewed ahead of every attempt: nothing was forced.
 * - `stopped`: the election does not run.
 */
export type ForcedElection =
  'stepped-down' | 'deposed' | 'superseded' | 'no-master' | 'not-forced' | 'stopped';

/** How many times `forceMasterElection()` deposes a master that keeps renewing in between. */
export const FORCE_ATTEMPTS = 5;

const NO_RECEIVER: MasterElectionEventReceiver = {
  becomeMaster: () => {},
  becomeSlave: () => {},
};

/**
 * A master election on any storage backend: leases timed on this process's
 * own monotonic clock (a dead or frozen master is replaced after `leaseMs`),
 * a local step-down deadline (`renewDeadlineMs`), resignation, forced
 * elections and fencing tokens. See docs/election-protocol.md.
 *
 * ```ts
 * const election = await MasterElection.open(store, { name: 'jobs', address: '10.0.0.1:80', receiver });
 * await election.start();
 * ```
 */
export class MasterElection {
  /** The election name. */
  readonly name: string;
  /** The `host:port` this process advertises when master. */
  readonly address: string;
  /** Whether this process takes part in elections (false: passive observer). */
  readonly participating: boolean;
  /** This participant's identity in the store: the `holderId` of the records of its terms. */
  readonly id: string;
  /** The current state; replays to new subscribers and emits on every change. */
  readonly state$: Observable<ElectionState>;

  private readonly lock: ElectionLock;
  private readonly opts: ResolvedElectionOptions;
  private readonly runner: ElectionRunner;
  private readonly subject: BehaviorSubject<ElectionState>;
  private readonly stoppedPromise: Promise<void>;
  private stoppedResolve!: () => void;
  /** How long `syncWait()` waits for the last notifications after the stop. */
  private deliveryLimitMs: number;
  private started = false;
  private closing = false;

  protected constructor(init: ElectionInit) {
    const { lock, opts, name, address, participating, receiver } = init;
    this.lock = lock;
    this.name = name;
    this.address = address;
    this.participating = participating;
    this.id = lock.id;
    this.opts = opts;
    this.deliveryLimitMs = opts.renewDeadlineMs;
    this.stoppedPromise = new Promise<void>((r) => (this.stoppedResolve = r));
    this.subject = new BehaviorSubject<ElectionState>({
      role: participating ? 'candidate' : 'slave',
      master: '',
      term: 0,
    });
    this.state$ = this.subject.pipe(
      distinctUntilChanged(
        (a, b) => a.role === b.role && a.master === b.master && a.term === b.term,
      ),
    );
    const notes = new Notifier(name, receiver, opts.logger);
    this.runner = new ElectionRunner(
      lock,
      opts,
      address,
      participating,
      notes,
      (s) => {
        if (!this.subject.closed) this.subject.next(s);
      },
      () => this.stopped(),
    );
  }

  /**
   * Opens an election on `store` (checking the name, address and timing
   * before anything is written); call {@link start} to run it.
   * @throws ElectionConfigError for a bad name, address or timing option.
   */
  static async open(
    store: ElectionStore,
    options: MasterElectionOpenOptions,
  ): Promise<MasterElection> {
    return new MasterElection(await MasterElection.prepare(store, options));
  }

  /** Checks the options and opens the lock: what a constructor takes. */
  protected static async prepare(
    store: ElectionStore,
    options: MasterElectionOpenOptions,
  ): Promise<ElectionInit> {
    if (options === null || typeof options !== 'object') {
      throw new ElectionConfigError('options', 'an object with name and address is required');
    }
    const opts = resolveElectionOptions(options);
    const address = validateAddress(options.address);
    const participating = options.participating ?? true;
    if (typeof participating !== 'boolean') {
      throw new ElectionConfigError(
        'participating',
        `must be a boolean (got ${String(participating)})`,
      );
    }
    const lock = await store.openLock({
      name: options.name,
      address,
      participating,
      timing: opts,
      clock: opts.clock,
      logger: opts.logger,
    });
    return {
      lock,
      opts,
      name: options.name,
      address,
      participating,
      receiver: options.receiver ?? NO_RECEIVER,
    };
  }

  /**
   * Reads the current master (calling `becomeSlave` when there is one), then
   * follows the election, running for master when there is none and this
   * participant takes part.
   * @throws the lock's error when the first read fails (the election is then stopped).
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    try {
      await this.runner.follower.start();
    } catch (err) {
      this.stop();
      throw err;
    }
  }

  // ------------------------------------------------------------- getters

  /** True while this process is master. Checks the clock: false once the renew deadline has passed, even before any timer fires. */
  isMaster(): boolean {
    const p = this.runner.phase;
    return p.kind === 'master' && p.term.isValid();
  }

  /** The current master as last seen (`''` when none): local state only, cheap, possibly stale. */
  getCurrentMaster(): string {
    return currentMaster(this.runner.phase, this.runner.view(), this.address);
  }

  /** The fencing token of the current master term (ours or the one we follow), 0 when no master is known. */
  get fencingToken(): number {
    return currentToken(this.runner.phase, this.runner.view());
  }

  /** This process's master term while it is master (a read-only view). */
  get currentTerm(): MasterTerm | undefined {
    const t = termInForce(this.runner.phase);
    return t?.isValid() ? t.view : undefined;
  }

  /** The current state, on the clock's time: a master past its renew deadline is not reported as master. */
  get state(): ElectionState {
    return electionState(this.runner.phase, this.runner.view(), this.address);
  }

  /**
   * Health, for probes: unhealthy when stopped, disconnected, resynchronising,
   * a master whose renew deadline has passed without it stepping down
   * (stuck), or while `becomeMaster` runs past `becomeMasterTimeoutMs`. The
   * role is the state as last published. No side effects.
   */
  health(): ElectionHealth {
    const s = this.subject.getValue();
    const status = this.lock.status();
    const reason =
      (this.runner.stopped ? undefined : this.runner.master.overdueReason()) ??
      unhealthyReason(
        this.runner.phase,
        this.runner.view(),
        status,
        this.lock.backend,
        this.opts.retryPeriodMs,
        this.opts.clock.now(),
      );
    return {
      healthy: reason === undefined,
      ...s,
      connected: status.connected,
      ...(reason ? { reason } : {}),
    };
  }

  /**
   * Reads the current master from the store (`''` when none). It does not
   * change what this client knows, except that a store found to have lost
   * its state makes the election start over (as any read would).
   */
  async readCurrentMaster(): Promise<string> {
    const read = await this.lock.read(this.runner.call());
    if (read.stateLost) this.runner.stateLost();
    return namesMaster(read.record) ? read.record.holder : '';
  }

  /**
   * What this participant knows, for diagnostics and tests (read-only, no
   * side effects): its phase, the term it holds (announced or not), and the
   * record as it last saw it, with the time it last saw the holder's
   * liveness change (on the election clock).
   */
  diagnostics(): ElectionDiagnostics {
    const r = this.runner;
    const s = r.snapshot;
    return {
      phase: r.phase.kind,
      heldToken: r.phase.kind === 'master' ? r.phase.term.token : 0,
      synced: r.synced,
      versionKey: s?.version.key ?? '',
      record: s?.record ? { ...s.record } : null,
      livenessSeenAt: r.livenessSeenAt,
    };
  }

  /** Resolves when the client has stopped (after `close()` or a fatal error) and its last notifications were delivered (or `renewDeadlineMs` passed). */
  syncWait(): Promise<void> {
    return this.stoppedPromise;
  }

  /** Resolves once no request of the election is in flight and every notification has been delivered. */
  async whenIdle(): Promise<void> {
    for (;;) {
      await this.runner.notes.idle;
      if (!this.runner.busy) return;
      await this.runner.settled();
    }
  }

  // ------------------------------------------------------------- actions

  /**
   * Forces a new election now. A master steps down and takes part again; any
   * other client ends the current term at the version it last saw. When the
   * record moved on meanwhile, it reads it again: a renewal of the same term
   * is deposed again at its new version (up to {@link FORCE_ATTEMPTS} tries);
   * another term, a release or an ending means a new election already
   * happened (`superseded`, not an error).
   * @returns what was done: see {@link ForcedElection}.
   * @throws the lock's error when a depose or read fails.
   */
  async forceMasterElection(): Promise<ForcedElection> {
    const r = this.runner;
    if (r.stopped) return 'stopped';
    if (r.phase.kind === 'master') {
      const token = r.phase.term.token;
      await this.bounded(r.stepDown('forced', 'forced election'), `release of term ${token}`);
      return 'stepped-down';
    }
    const s = r.snapshot;
    if (!s || !namesMaster(s.record)) return 'no-master';
    const seen = s.record;
    let version = s.version;
    for (let attempt = 1; ; attempt++) {
      if ((await this.lock.depose(version, r.call())) === 'deposed') {
        r.notes.log(
          `forced an election: ended term ${seen.token} of ${seen.holder || 'the master'}`,
        );
        return 'deposed';
      }
      if (r.stopped) return 'stopped';
      // The record moved on: a renewal of the same term (force it again), or a new election.
      const read = await this.lock.read(r.call());
      if (read.stateLost) r.stateLost();
      const now = read.record;
      if (read.stateLost || !namesMaster(now) || now.termId !== seen.termId) {
        r.notes.debug(`force election: term ${seen.token} ended meanwhile`);
        return 'superseded';
      }
      if (attempt >= FORCE_ATTEMPTS) {
        r.notes.warn(
          `could not force an election: term ${seen.token} of ${seen.holder || 'the master'} was renewed ahead of ${attempt} attempts`,
        );
        return 'not-forced';
      }
      version = read.version;
    }
  }

  /**
   * Gives up mastership now: the term is given back so another participant
   * takes over at once. This process sits the next election out (until a new
   * master appears or `leaseMs` passes). No-op when not master.
   */
  async resign(): Promise<void> {
    const r = this.runner;
    if (r.phase.kind !== 'master') return; // (an unannounced term is given back too)
    const token = r.phase.term.token;
    await this.bounded(r.stepDown('resigned', 'resigned'), `release of term ${token}`);
  }

  /**
   * Resigns if master, then stops following the election. A write of an
   * election in progress is allowed to land first, so that what it won is
   * given back too. Bounded by `renewDeadlineMs` in all. The store stays open.
   */
  async close(): Promise<void> {
    const r = this.runner;
    if (r.stopped || this.closing) return this.stoppedPromise;
    this.closing = true;
    const until = this.opts.clock.now() + this.opts.renewDeadlineMs;
    const left = (): number => Math.max(0, until - this.opts.clock.now());
    let cleanup: Promise<void>;
    let what = 'clean-up';
    if (r.phase.kind === 'master') {
      what = `release of term ${r.phase.term.token}`;
      cleanup = r.stepDown('resigned', 'closed', { kind: 'closing' });
    } else {
      r.phase = { kind: 'closing' }; // no new election action from here on
      r.evaluate();
      if (r.busy) {
        await this.bounded(r.settled(), 'the election write in progress', left());
      }
      cleanup = r.master.allCleanups();
    }
    await this.bounded(cleanup, what, left());
    this.stop(left());
    await this.stoppedPromise;
  }

  // ------------------------------------------------------------ internals

  private async bounded(
    p: Promise<void>,
    what: string,
    ms = this.opts.renewDeadlineMs,
  ): Promise<void> {
    if (!(await this.runner.timers.bound(p, ms))) {
      this.runner.notes.warn(`${what} did not finish within ${ms} ms`);
    }
  }

  /** Stops; `syncWait()` settles once queued notifications are delivered, or after `deliveryLimitMs`. */
  private stop(deliveryLimitMs = this.opts.renewDeadlineMs): void {
    this.deliveryLimitMs = deliveryLimitMs;
    this.runner.stop();
  }

  /** The runner stopped (closed, or a fatal error): close the lock, settle `syncWait()`. */
  private stopped(): void {
    const r = this.runner;
    this.subject.complete();
    void this.lock
      .close()
      .catch((err: unknown) => r.notes.debug(`closing the lock failed: ${String(err)}`));
    const clock = this.opts.clock;
    let timer: unknown;
    void Promise.race([
      r.notes.idle,
      new Promise<void>((resolve) => {
        timer = clock.setTimer(resolve, this.deliveryLimitMs);
      }),
    ]).then(() => {
      clock.clearTimer(timer);
      this.stoppedResolve();
    });
  }
}

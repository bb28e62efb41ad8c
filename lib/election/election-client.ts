import { randomBytes } from 'node:crypto';
import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs';
import type { DoozerClient } from '../doozer/client.js';
import {
  DoozerConnectionError,
  DoozerError,
  DoozerPermissionError,
  DoozerTooLateError,
} from '../doozer/errors.js';
import type { Clock } from './clock.js';
import { MasterElection, type MasterElectionOpenOptions } from './engine/client.js';
import type { ElectionHealth } from './engine/state.js';
import type { ElectionStore } from './port.js';
import { ElectionFatalError, MasterStepDownError, type StepDownReason } from './errors.js';
import {
  electionGlob,
  electionPath,
  encodeLease,
  leasePath,
  parseLease,
  type LeaseRecord,
} from './lease.js';
import {
  resolveElectionOptions,
  validateAddress,
  validateElectionName,
  type ResolvedElectionOptions,
} from './options.js';
import type {
  ElectionLogger,
  ElectionState,
  MasterElectionEventReceiver,
  MasterElectionOptions,
  MasterTerm,
} from './types.js';

/** What the engine needs of a Doozer client. */
type Doozer = Pick<
  DoozerClient,
  'rev' | 'get' | 'set' | 'del' | 'wait' | 'self' | 'state' | 'connectionId'
>;

/** The election file as last observed: `null` when missing. */
interface ElectionFile {
  readonly rev: number;
  readonly master: string;
}

/** The lease file as last observed (`rev` 0: missing). */
interface LeaseFile {
  readonly rev: number;
  /** The raw body: with the rev, what identifies this version of the file. */
  readonly text: string;
  readonly record: LeaseRecord | null;
}

const leaseFile = (rev: number, text: string): LeaseFile => ({
  rev,
  text,
  record: parseLease(text),
});

/**
 * Whether two observations are the same version of a file. Revs alone are
 * not enough: a server that restarted empty reuses revs, so a lagging client
 * could take a new file for the one it remembers; the bodies tell them apart
 * (lease records carry a per-term nonce).
 */
const sameLease = (a: LeaseFile, b: LeaseFile): boolean => a.rev === b.rev && a.text === b.text;
const sameElection = (a: ElectionFile | null, b: ElectionFile | null): boolean =>
  a === null || b === null ? a === b : a.rev === b.rev && a.master === b.master;

/**
 * Revs are only meaningful in the store they came from: a server that
 * restarted empty reuses small revs, and a compare-and-set with a stale, larger
 * rev would then succeed on someone else's file. So every write names the
 * connection on which its rev was learned (the client refuses to send it on
 * another), and after a reconnection the files are read again first.
 */
interface Bound {
  readonly timeoutMs: number;
  readonly connectionId: number;
}

/** One observed change of either file, from a WAIT event or a resync read. */
type Observation =
  | { readonly kind: 'election'; readonly file: ElectionFile | null; readonly at: number }
  | { readonly kind: 'lease'; readonly file: LeaseFile };

export type { ElectionHealth } from './engine/state.js';

class Term implements MasterTerm {
  readonly controller = new AbortController();
  readonly signal = this.controller.signal;
  /** Start time of each renewal attempt, by sequence number. */
  readonly attempts = new Map<number, number>();
  /** Sequence number of the last write attempted (each attempt gets its own, so a late one is dated right). */
  lastAttempt = 0;
  renewing = false;

  /** Set when `becomeMaster` is called: from then on this process is master. */
  announced = false;
  /** Monotonic time at which the lease was won. */
  readonly wonAt: number;

  constructor(
    readonly fencingToken: number,
    /** Random per term, written in every lease record of the term. */
    readonly nonce: string,
    /** The lease file's rev after our last successful write, and the connection it was learned on. */
    public leaseRev: number,
    public leaseConn: number,
    /** Sequence number of our last successful write. */
    public seq: number,
    /** Monotonic time after which this term is over. */
    public validUntil: number,
    private readonly clock: Clock,
  ) {
    this.wonAt = clock.now();
  }

  get deadline(): number {
    return this.validUntil;
  }

  isValid(): boolean {
    return this.announced && !this.signal.aborted && this.clock.now() < this.validUntil;
  }
}

/** A finished term whose files still need tidying: release the lease, delete the election file. */
interface Cleanup {
  readonly token: number;
  /** The term's lease nonce: only a record carrying it is ours to release. */
  readonly nonce: string;
  /** The connection the term's revs were learned on, and the lease as our own last write left it. */
  readonly hint:
    { readonly conn: number; readonly leaseRev: number; readonly seq: number } | undefined;
  readonly done: Promise<void>;
  resolve(): void;
  running: boolean;
}

type Decision =
  | { readonly kind: 'none' }
  | { readonly kind: 'wait'; readonly until: number }
  | { readonly kind: 'create'; readonly leaseBasis: number }
  | { readonly kind: 'depose'; readonly electionRev: number; readonly leaseRev: number };

const newNonce = (): string => randomBytes(6).toString('hex');

const REV_MISMATCH = 'REV_MISMATCH';
const isRevMismatch = (err: unknown): boolean =>
  err instanceof DoozerError && err.code === REV_MISMATCH;
const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * A master election on a Doozer lock server: the Go package's
 * `MasterElectionClient`, plus leases (a dead or frozen master is replaced),
 * resignation, fencing tokens and a local step-down deadline.
 *
 * The election file `/ns/service/master/<name>` holds the master's address,
 * exactly as in the Go package. The lease lives beside it in
 * `/ns/service/master-lease/<name>`: the master renews it every
 * `retryPeriodMs` with a compare-and-set, and steps down when no renewal
 * completed within `renewDeadlineMs` of the start of its last successful one.
 * Other participants replace a master only after a full `leaseMs` without
 * seeing the lease change, measured on their own monotonic clock. See
 * docs/election-protocol.md for the protocol and its safety argument.
 */
export class MasterElectionClient {
  /** The election name. */
  readonly name: string;
  /** The `host:port` this process advertises when master. */
  readonly address: string;
  /** Whether this process takes part in elections (false: passive observer). */
  readonly participating: boolean;

  private readonly opts: ResolvedElectionOptions;
  private readonly clock: Clock;
  private readonly log: ElectionLogger;
  private readonly id = randomBytes(8).toString('hex');
  private readonly electionPath: string;
  private readonly leasePath: string;
  private readonly glob: string;

  // What we observed of the two files, and when (our clock).
  private election: ElectionFile | null = null;
  private electionSeenAt = 0;
  /** Store rev at which the election file's observed state last changed. */
  private electionChangedAt = 0;
  private lease: LeaseFile = leaseFile(0, '');
  private leaseSeenAt = 0;
  private storeRev = 0;
  /** The server node (SELF) the observed state was read from. */
  private node = '';
  private watchRev = 0;
  /** The connection on which the observed state was read (0: none yet). */
  private conn = 0;
  private synced = false;
  private epoch = 0;
  private watchAbort: AbortController | null = null;
  private resyncing: Promise<void> | null = null;

  // Our own part.
  private stopped = false;
  /** close() has begun: no new election action, writes in flight may land. */
  private closing = false;
  private term: Term | null = null;
  private creating = false;
  private buffered: Observation[] = [];
  private acquiring: { readonly electionRev: number } | null = null;
  /** Revs at which we created the election file (recent ones), to recognise our own events. */
  private readonly ownElectionRevs = new Set<number>();
  private deposing = false;
  private cleanups: Cleanup[] = [];
  /** Terms whose release waits for `beforeRelease`; their lease is not free, even to us. */
  private readonly holding = new Set<number>();
  private abstain: { readonly until: number; readonly afterToken: number } | null = null;
  private backoffUntil = 0;
  private pendingDecision: Decision['kind'] | null = null;
  private skipJitter = false;
  private writeRttMs = 1;
  /**
   * Binary exponential backoff of the jitter window: doubled each time this
   * client loses a race to write, halved each time it wins one, so the window
   * grows with the number of participants without knowing it.
   */
  private contention = 1;

  private readonly timers = new Map<string, unknown>();
  /** Pending sleep() promises, woken by stop(). */
  private readonly sleepers = new Map<string, () => void>();
  private sleepSeq = 0;
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];
  private delivery: Promise<void> = Promise.resolve();
  private readonly stateSubject: BehaviorSubject<ElectionState>;
  private stoppedResolve!: () => void;
  private readonly stoppedPromise = new Promise<void>((r) => (this.stoppedResolve = r));

  /** The current state; replays to new subscribers and emits on every change. */
  readonly state$: Observable<ElectionState>;

  private constructor(
    private readonly doozer: Doozer,
    name: string,
    address: string,
    participating: boolean,
    private readonly receiver: MasterElectionEventReceiver,
    options: MasterElectionOptions | undefined,
  ) {
    this.name = validateElectionName(name);
    this.address = validateAddress(address);
    this.participating = participating;
    this.opts = resolveElectionOptions(options);
    this.clock = this.opts.clock;
    this.log = this.opts.logger;
    this.electionPath = electionPath(name);
    this.leasePath = leasePath(name);
    this.glob = electionGlob(name);
    // Until the first read, count from now: a lease we have not seen yet may be held.
    this.electionSeenAt = this.leaseSeenAt = this.clock.now();
    this.stateSubject = new BehaviorSubject<ElectionState>({
      role: participating ? 'candidate' : 'slave',
      master: '',
      term: 0,
    });
    this.state$ = this.stateSubject.pipe(
      distinctUntilChanged(
        (a, b) => a.role === b.role && a.master === b.master && a.term === b.term,
      ),
    );
  }

  /**
   * Creates and starts an election client: reads the current master (calling
   * `becomeSlave` when there is one), then follows the election, running one
   * when there is no master and `participating` is true.
   *
   * @param client a connected Doozer client; the election never closes it.
   * @param name the election's name, one Doozer path component.
   * @param address the `host:port` this process advertises as master.
   * @param participating false for a passive client that only follows (and may force elections).
   * @param receiver notified of every change, in order.
   * @throws ElectionConfigError for a bad name, address or timing option.
   * @throws DoozerPermissionError (or another Doozer error) when the first read
   *   of the election fails; later failures go to the receiver instead.
   */
  static async create(
    client: DoozerClient,
    name: string,
    address: string,
    participating: boolean,
    receiver: MasterElectionEventReceiver,
    options?: MasterElectionOptions,
  ): Promise<MasterElectionClient> {
    const election = new MasterElectionClient(
      client,
      name,
      address,
      participating,
      receiver,
      options,
    );
    await election.start();
    return election;
  }

  /**
   * Opens an election on any storage backend (an {@link ElectionStore}: the
   * in-memory store of `nestjs-master-election/testing`, and the backends
   * under lib/backends/), run by the store-neutral engine. Call `start()` on
   * the result to run it.
   * @throws ElectionConfigError for a bad name, address or timing option.
   */
  static open(store: ElectionStore, options: MasterElectionOpenOptions): Promise<MasterElection> {
    return MasterElection.open(store, options);
  }

  // ---------------------------------------------------------------- public API

  /** True while this process is master. Checks the clock: false once the renew deadline has passed, even before any timer fires. */
  isMaster(): boolean {
    return this.term !== null && this.term.isValid();
  }

  /** The current master as last seen (`''` when none): local state only, cheap, possibly stale. */
  getCurrentMaster(): string {
    this.expire();
    if (this.term) return this.term.announced ? this.address : '';
    return this.election?.master ?? '';
  }

  /** Reads the current master from the server (`''` when none). Does not change local state. */
  async readCurrentMaster(): Promise<string> {
    const file = await this.doozer.get(this.electionPath, undefined, {
      timeoutMs: this.opts.renewDeadlineMs,
    });
    return file.rev === 0 ? '' : file.text;
  }

  /** The fencing token of the current master term (ours or the one we follow), 0 when no master is known. */
  get fencingToken(): number {
    if (this.term) return this.term.announced ? this.term.fencingToken : 0;
    return this.election?.rev ?? 0;
  }

  /** This process's master term while it is master. */
  get currentTerm(): MasterTerm | undefined {
    return this.term?.isValid() ? this.term : undefined;
  }

  /** The current state (a master past its renew deadline steps down first). */
  get state(): ElectionState {
    this.expire();
    return this.stateSubject.getValue();
  }

  /**
   * Resolves when the client has stopped (after `close()` or a fatal error)
   * and its last notifications were delivered (or `renewDeadlineMs` passed).
   */
  syncWait(): Promise<void> {
    return this.stoppedPromise;
  }

  /**
   * Forces a new election now. A master steps down and takes part again; any
   * other client deletes the election file at the rev it last saw (a change
   * in between means an election already happened, which is not an error).
   */
  async forceMasterElection(): Promise<void> {
    if (this.stopped) return;
    if (this.term) {
      const token = this.term.fencingToken;
      // Bounded like resign(): the clean-up goes on in the background.
      await this.withTimeout(
        this.stepDown('forced', 'forced election'),
        this.opts.renewDeadlineMs,
        `release of term ${token}`,
      );
      return;
    }
    const current = this.election;
    if (!current) return;
    try {
      await this.doozer.del(this.electionPath, current.rev, this.bound());
    } catch (err) {
      if (!isRevMismatch(err)) throw err;
      this.debug(`force election: election file changed since rev ${current.rev}`);
    }
  }

  /**
   * Gives up mastership now: the lease is released and the election file
   * deleted so another participant takes over at once. This process sits the
   * next election out (until a new master appears or `leaseMs` passes). No-op
   * when not master.
   */
  async resign(): Promise<void> {
    if (!this.term) return; // (an unannounced term is given back too: its becomeMaster is skipped)
    const token = this.term.fencingToken;
    // Bounded: while the server is unreachable the release cannot finish; it
    // goes on in the background, and the lease runs out for others anyway.
    await this.withTimeout(
      this.stepDown('resigned', 'resigned'),
      this.opts.renewDeadlineMs,
      `release of term ${token}`,
    );
  }

  /**
   * Resigns if master, then stops following the election. A write of an
   * election in progress is allowed to land first, so that what it wrote is
   * given back too. Bounded by `renewDeadlineMs` in all (then the rest is
   * left to the lease running out). The Doozer client stays open.
   */
  async close(): Promise<void> {
    if (this.stopped || this.closing) return this.stoppedPromise;
    this.closing = true; // no new election action from here on
    const until = this.clock.now() + this.opts.renewDeadlineMs;
    const left = (): number => Math.max(0, until - this.clock.now());
    if (this.creating || this.acquiring || this.deposing) {
      await this.withTimeout(this.writesSettled(), left(), 'the election write in progress');
    }
    const token = this.term?.fencingToken;
    const cleanup =
      token !== undefined
        ? this.stepDown('resigned', 'closed')
        : Promise.all(this.cleanups.map((c) => c.done)).then(() => undefined);
    await this.withTimeout(
      cleanup,
      left(),
      token !== undefined ? `release of term ${token}` : 'clean-up',
    );
    this.stop(left());
    await this.stoppedPromise;
  }

  /**
   * Health, for probes (like client-go's leader election health check): a
   * master whose renew deadline has passed without it stepping down is stuck.
   * (It is reported as found, then made to step down.)
   */
  health(): ElectionHealth {
    const s = this.stateSubject.getValue();
    const connected = this.doozer.state === 'connected';
    let reason: string | undefined;
    if (this.stopped) reason = 'election stopped';
    else if (this.term && this.clock.now() >= this.term.validUntil)
      reason = 'master past its renew deadline has not stepped down (stuck)';
    else if (
      this.term &&
      !this.term.announced &&
      this.clock.now() - this.term.wonAt >= this.opts.retryPeriodMs
    )
      reason = 'won the election but becomeMaster waits behind a notification handler (stuck)';
    else if (!connected) reason = `Doozer connection is ${this.doozer.state}`;
    else if (!this.synced) reason = 'resynchronising with the server';
    this.expire();
    return { healthy: reason === undefined, ...s, connected, ...(reason ? { reason } : {}) };
  }

  /**
   * Resolves once no request of the election is in flight and every
   * notification has been delivered.
   * @internal For tests.
   */
  /** Resolves once no request of the election is in flight (notifications aside). */
  private async writesSettled(): Promise<void> {
    while (this.inflight > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  async whenIdle(): Promise<void> {
    for (;;) {
      await this.delivery;
      if (this.inflight === 0) return;
      await this.writesSettled();
    }
  }

  // ------------------------------------------------------------- start & sync

  private async start(): Promise<void> {
    try {
      await this.readState();
    } catch (err) {
      this.stop();
      throw err;
    }
  }

  /** Reads both files at one rev and follows from there. */
  private async readState(): Promise<void> {
    const epoch = ++this.epoch;
    this.synced = false;
    this.watchAbort?.abort();
    const conn = await this.connected();
    const bound = this.bound(conn);
    const [rev, node] = await Promise.all([this.doozer.rev(bound), this.doozer.self(bound)]);
    const [e, l] = await Promise.all([
      this.doozer.get(this.electionPath, rev, bound),
      this.doozer.get(this.leasePath, rev, bound),
    ]);
    if (this.stopped || epoch !== this.epoch) return;
    if (rev < this.storeRev) this.storeReset(rev);
    const nodeChanged = this.node !== '' && node !== this.node;
    this.node = node;
    this.storeRev = rev;
    this.conn = conn;
    const election = e.rev === 0 ? null : { rev: e.rev, master: e.text };
    if (!sameElection(election, this.election)) {
      this.observe({ kind: 'election', file: election, at: election?.rev ?? rev });
    }
    const lease = leaseFile(l.rev, l.text);
    if (!sameLease(lease, this.lease)) this.observe({ kind: 'lease', file: lease });
    else if (lease.rev === 0 && nodeChanged) {
      // A missing lease looks the same in any store: on another node (or a
      // restarted one, which may have lost its state and come back to our
      // rev meanwhile) it cannot show that this is the store we saw it
      // missing in. Wait it out again from now.
      this.electionSeenAt = this.leaseSeenAt = this.clock.now();
    }
    this.watchRev = rev + 1;
    this.synced = true;
    this.updateState();
    this.evaluate();
    void this.watch(epoch);
  }

  /** Resynchronises after a lost connection or TOO_LATE, retrying until it works or the client stops. */
  private resync(): Promise<void> {
    this.synced = false;
    this.resyncing ??= (async () => {
      let delay = Math.min(100, this.opts.retryPeriodMs);
      while (!this.stopped) {
        try {
          await this.readState();
          return;
        } catch (err) {
          if (err instanceof DoozerPermissionError) return this.fatal(err);
          this.debug(`resync failed: ${describe(err)}`);
          await this.sleep(delay * (0.5 + Math.random() / 2)).promise;
          delay = Math.min(delay * 2, this.opts.retryPeriodMs);
        }
      }
    })().finally(() => (this.resyncing = null));
    return this.resyncing;
  }

  private async watch(epoch: number): Promise<void> {
    const abort = new AbortController();
    this.watchAbort = abort;
    while (!this.stopped && epoch === this.epoch) {
      try {
        const ev = await this.doozer.wait(this.glob, this.watchRev, {
          signal: abort.signal,
          connectionId: this.conn,
        });
        if (this.stopped || epoch !== this.epoch) return;
        this.watchRev = ev.rev + 1;
        this.storeRev = Math.max(this.storeRev, ev.rev);
        if (ev.path === this.electionPath) {
          this.observe({
            kind: 'election',
            file: ev.isDel ? null : { rev: ev.rev, master: ev.text },
            at: ev.rev,
          });
        } else if (ev.path === this.leasePath) {
          this.observe({ kind: 'lease', file: leaseFile(ev.rev, ev.isDel ? '' : ev.text) });
        } else {
          continue; // another directory matching master*
        }
        this.updateState();
        this.evaluate();
      } catch (err) {
        if (this.stopped || abort.signal.aborted) return;
        if (err instanceof DoozerPermissionError) return this.fatal(err);
        if (err instanceof DoozerTooLateError) {
          this.log.warn(`election ${this.name}: fell behind the server's history; resyncing`);
        } else if (err instanceof DoozerConnectionError) {
          this.debug(`watch interrupted: ${describe(err)}`);
        } else {
          this.report(err);
        }
        if (epoch === this.epoch) void this.resync();
        return;
      }
    }
  }

  // ---------------------------------------------------------- observations

  private observe(obs: Observation): void {
    // While our own create is in flight we cannot tell our election file from
    // another's: hold observations back until its answer comes.
    if (this.creating) {
      this.buffered.push(obs);
      return;
    }
    if (obs.kind === 'lease') this.observeLease(obs.file);
    else this.observeElection(obs.file, obs.at);
  }

  private flushBuffered(): void {
    const pending = this.buffered;
    this.buffered = [];
    for (const obs of pending) this.observe(obs);
  }

  private observeLease(file: LeaseFile): void {
    if (sameLease(file, this.lease)) return;
    this.lease = file;
    this.leaseSeenAt = this.clock.now();
    const term = this.term;
    const r = file.record;
    if (
      term &&
      (file.rev > term.leaseRev || (file.rev === term.leaseRev && !this.isOurs(r, term)))
    ) {
      if (this.isOurs(r, term)) {
        term.leaseRev = file.rev; // our own renewal, seen before its answer
      } else {
        void this.stepDown(
          'lease-lost',
          `the lease was changed by ${r ? r.holder : 'another client'}`,
        );
      }
    }
  }

  private observeElection(file: ElectionFile | null, at: number): void {
    if (sameElection(file, this.election)) return;
    this.election = file;
    this.electionSeenAt = this.clock.now();
    this.electionChangedAt = Math.max(this.electionChangedAt, at);
    if (this.term && (file?.rev !== this.term.fencingToken || file.master !== this.address)) {
      void this.stepDown(
        'election-changed',
        file ? `the election file now names ${file.master}` : 'the election file was deleted',
      );
    }
    if (!file || (this.ownElectionRevs.has(file.rev) && file.master === this.address)) return;
    if (this.abstain && file.rev > this.abstain.afterToken) this.abstain = null;
    const { master, rev } = file;
    this.deliver('becomeSlave', () => this.receiver.becomeSlave(master, rev));
  }

  /** The server's store went back in time: every rev we know is meaningless. */
  private storeReset(rev: number): void {
    this.log.warn(
      `election ${this.name}: the server's rev went back from ${this.storeRev} to ${rev} (state lost); starting over`,
    );
    if (this.term) void this.stepDown('store-reset', 'the server lost its state');
    for (const c of this.cleanups) c.resolve();
    this.cleanups = [];
    this.ownElectionRevs.clear();
    this.election = null;
    this.electionChangedAt = 0;
    this.lease = leaseFile(0, '');
    this.electionSeenAt = this.leaseSeenAt = this.clock.now();
    this.acquiring = null;
    this.storeRev = rev;
  }

  // ---------------------------------------------------------------- decisions

  /**
   * Whether a lease file leaves the way free for a new master without waiting:
   * released by its holder, or our own record of a term that has ended. A
   * missing or unreadable lease is not free: it may be missing because the
   * server lost its state while a master still acts, so it is waited out
   * like a silent holder (the first election on an empty store takes leaseMs).
   */
  private leaseIsFree(file: LeaseFile): boolean {
    const r = file.record;
    if (!r) return false;
    return (
      r.state === 'released' ||
      (r.id === this.id && this.term === null && !this.holding.has(r.term))
    );
  }

  private decide(now: number): Decision {
    if (this.stopped || this.closing || !this.synced || !this.participating)
      return { kind: 'none' };
    if (this.term || this.creating || this.acquiring || this.deposing) return { kind: 'none' };
    if (now < this.backoffUntil) return { kind: 'wait', until: this.backoffUntil };
    const e = this.election;
    const l = this.lease;
    const leaseExpiry = this.leaseSeenAt + this.opts.leaseMs;
    if (e) {
      const leased = l.record?.state === 'held' && l.record.term === e.rev;
      if (!leased && this.opts.respectLeaselessMaster) return { kind: 'none' };
      const expiry = leased
        ? leaseExpiry
        : Math.max(this.electionSeenAt, this.leaseSeenAt) + this.opts.leaseMs;
      return now >= expiry
        ? { kind: 'depose', electionRev: e.rev, leaseRev: l.rev }
        : { kind: 'wait', until: expiry };
    }
    if (this.abstain) {
      if (now < this.abstain.until) return { kind: 'wait', until: this.abstain.until };
      this.abstain = null;
    }
    if (this.leaseIsFree(l) || now >= leaseExpiry) return { kind: 'create', leaseBasis: l.rev };
    return { kind: 'wait', until: leaseExpiry };
  }

  /** Re-evaluates what to do after any change; arms at most one timer. */
  private evaluate(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    this.expire();
    this.runCleanups();
    const d = this.decide(now);
    if (d.kind === 'none') {
      this.pendingDecision = null;
      this.clearTimer('decide');
      return;
    }
    if (d.kind === 'wait') {
      this.pendingDecision = null;
      this.setTimer('decide', d.until - now, () => this.evaluate());
      return;
    }
    if (this.skipJitter) {
      this.skipJitter = false;
      this.act(d);
      return;
    }
    if (this.pendingDecision === d.kind) return; // already waiting out its jitter
    this.pendingDecision = d.kind;
    this.setTimer('decide', Math.random() * this.jitterMs(), () => {
      this.pendingDecision = null;
      const again = this.decide(this.clock.now());
      if (again.kind === d.kind) this.act(again);
      else this.evaluate();
    });
  }

  private jitterMs(): number {
    if (this.opts.electionJitterMs !== undefined) return this.opts.electionJitterMs;
    const base = Math.max(4 * this.writeRttMs, 20);
    return Math.min(base * this.contention, this.opts.retryPeriodMs / 2);
  }

  private act(d: Decision): void {
    if (d.kind === 'create') this.create(d.leaseBasis);
    else if (d.kind === 'depose') this.depose(d.electionRev, d.leaseRev);
  }

  private backoff(): void {
    this.backoffUntil = this.clock.now() + this.opts.retryPeriodMs * (0.25 + Math.random() / 4);
  }

  // ------------------------------------------------------------------ effects

  /** Runs an async effect, counting it for whenIdle(); its result handlers run synchronously. */
  private spawn(effect: () => Promise<void>): void {
    this.inflight++;
    effect()
      .catch((err: unknown) => this.report(err))
      .finally(() => {
        this.inflight--;
        if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
  }

  /** Request options bound to a connection (by default the one the observed state came from). */
  private bound(conn = this.conn): Bound {
    return { timeoutMs: this.opts.renewDeadlineMs, connectionId: conn };
  }

  /** Waits for the Doozer client to be connected (any request waits for that) and returns the connection. */
  private async connected(): Promise<number> {
    if (this.doozer.state !== 'connected') {
      await this.doozer.rev({ timeoutMs: this.opts.renewDeadlineMs });
    }
    return this.doozer.connectionId;
  }

  /** Candidate: create the election file (create-only, so exactly one of many wins). */
  private create(leaseBasis: number): void {
    this.creating = true;
    const start = this.clock.now();
    const conn = this.conn;
    const lost = (): void => {
      // Lost the race: the winner's file is on its way in the WAIT stream.
      this.contention = Math.min(this.contention * 2, 64);
      this.creating = false;
      this.backoffUntil = this.clock.now() + this.jitterMs();
      this.flushBuffered();
      this.evaluate();
    };
    this.spawn(async () => {
      let rev: number;
      try {
        // A read first: another candidate usually won during our jitter, and a
        // read costs the server far less than a failed write (no consensus
        // round, no /ctl/err entry), so a master change causes no write storm.
        const current = await this.doozer.get(this.electionPath, undefined, this.bound(conn));
        if (current.rev !== 0) return lost();
        rev = await this.doozer.set(this.electionPath, 0, this.address, this.bound(conn));
      } catch (err) {
        if (isRevMismatch(err)) return lost();
        this.creating = false;
        this.failed('create the election file', err);
        this.flushBuffered();
        this.evaluate();
        return;
      }
      this.sampleRtt(start);
      this.contention = Math.max(1, this.contention / 2);
      this.creating = false;
      this.ownElectionRevs.add(rev);
      if (this.ownElectionRevs.size > 16) {
        this.ownElectionRevs.delete(this.ownElectionRevs.values().next().value as number);
      }
      if (this.closing) {
        // Closing: do not take the lease, just give the election file back.
        this.creating = false;
        this.flushBuffered();
        void this.addCleanup(rev, newNonce(), { conn, leaseRev: 0, seq: -1 });
        return;
      }
      this.acquiring = { electionRev: rev };
      this.debug(`created the election file at rev ${rev}; taking the lease`);
      this.flushBuffered();
      this.updateState();
      await this.acquire(rev, leaseBasis, conn);
    });
  }

  /** Takes the lease for the term whose election file we created at `electionRev`. */
  private async acquire(electionRev: number, basis: number, conn: number): Promise<void> {
    // Every attempt writes the same record; when an answer is lost and a read
    // shows our record, it may come from any attempt: date it from the first.
    const firstStart = this.clock.now();
    const nonce = newNonce();
    const record = this.record('held', electionRev, 0, nonce);
    for (let attempt = 0; attempt < 3 && !this.stopped; attempt++) {
      const start = this.clock.now();
      try {
        const rev = await this.doozer.set(this.leasePath, basis, record, this.bound(conn));
        this.sampleRtt(start);
        this.acquired(electionRev, nonce, rev, start, conn);
        return;
      } catch (err) {
        if (err instanceof DoozerPermissionError) return this.fatal(err);
        // A mismatch, or no answer: read the lease to learn what happened.
        let current: LeaseFile;
        try {
          const f = await this.doozer.get(this.leasePath, undefined, this.bound(conn));
          current = leaseFile(f.rev, f.text);
        } catch (readErr) {
          this.failed('take the lease', readErr);
          break;
        }
        const r = current.record;
        if (current.text === record) {
          this.acquired(electionRev, nonce, current.rev, firstStart, conn);
          return;
        }
        if (!this.leaseIsFree(current)) {
          this.log.warn(
            `election ${this.name}: won the election file but the lease is held by ${r?.holder ?? '?'}; giving the election file back`,
          );
          break;
        }
        basis = current.rev; // released in between: try again from there
      }
    }
    this.acquiring = null;
    this.backoff();
    void this.addCleanup(electionRev, nonce, { conn, leaseRev: 0, seq: -1 });
    this.updateState();
    this.evaluate();
  }

  private acquired(
    electionRev: number,
    nonce: string,
    leaseRev: number,
    start: number,
    conn: number,
  ): void {
    this.acquiring = null;
    const validUntil = start + this.opts.renewDeadlineMs;
    // Ours unless we saw the election file change after we created it.
    const stillOurs = this.election
      ? this.election.rev === electionRev
      : this.electionChangedAt < electionRev;
    if (this.stopped || this.closing || !stillOurs || this.clock.now() >= validUntil) {
      this.debug(`took the lease for term ${electionRev} too late; giving it back`);
      void this.addCleanup(electionRev, nonce, { conn, leaseRev, seq: 0 });
      this.updateState();
      this.evaluate();
      return;
    }
    const term = new Term(electionRev, nonce, leaseRev, conn, 0, validUntil, this.clock);
    term.attempts.set(0, start);
    this.term = term;
    this.abstain = null;
    this.log.log(`election ${this.name}: ${this.address} is master (term ${electionRev})`);
    this.armTerm(term, start);
    this.updateState();
    this.deliver('becomeMaster', async () => {
      // The term may have ended while earlier notifications were delivered.
      if (this.term !== term || term.signal.aborted || this.clock.now() >= term.validUntil) return;
      // Master from here on: isMaster() and the state say so from this call.
      term.announced = true;
      this.updateState();
      try {
        await this.receiver.becomeMaster(term);
      } catch (err) {
        this.report(err);
        if (this.term === term) {
          void this.stepDown('become-master-failed', `becomeMaster failed: ${describe(err)}`);
        }
      }
    });
  }

  /** Arms the renewal and deadline timers of a term, after a successful write started at `start`. */
  private armTerm(term: Term, start: number): void {
    const now = this.clock.now();
    this.setTimer('deadline', term.validUntil - now, () => this.evaluate());
    this.setTimer('renew', start + this.opts.retryPeriodMs - now, () => this.renew(term));
  }

  /** Master: renew the lease with a compare-and-set on the rev of our last write. */
  private renew(term: Term): void {
    if (this.term !== term || term.renewing || this.stopped) return;
    const now = this.clock.now();
    if (now >= term.validUntil) return this.evaluate();
    if (!term.announced) {
      // becomeMaster waits behind a notification handler that has not
      // finished. A term nobody was told of is not kept alive: unless it is
      // announced before its deadline, it ends there and others take over.
      this.setTimer('renew', this.opts.retryPeriodMs / 4, () => this.renew(term));
      return;
    }
    const seq = ++term.lastAttempt;
    term.attempts.set(seq, now);
    term.renewing = true;
    const record = this.record('held', term.fencingToken, seq, term.nonce);
    this.spawn(async () => {
      try {
        const rev = await this.doozer.set(this.leasePath, term.leaseRev, record, {
          timeoutMs: Math.max(1, term.validUntil - now),
          connectionId: term.leaseConn,
        });
        this.sampleRtt(now);
        this.renewed(term, seq, rev, term.leaseConn);
      } catch (err) {
        term.renewing = false;
        if (err instanceof DoozerPermissionError) return this.fatal(err);
        if (this.term !== term) return;
        // A mismatch, or a new connection (maybe to a server that lost its
        // state): read the lease on the current connection to learn where we stand.
        if (isRevMismatch(err) || term.leaseConn !== this.doozer.connectionId) {
          return this.resolveRenewal(term);
        }
        this.debug(`renewal ${seq} of term ${term.fencingToken} failed: ${describe(err)}`);
        const retry = this.opts.retryPeriodMs * (0.25 + Math.random() / 4);
        this.setTimer('renew', retry, () => this.renew(term));
      }
    });
  }

  private renewed(term: Term, seq: number, rev: number, conn: number): void {
    term.renewing = false;
    if (this.term !== term) return; // ended meanwhile: the cleanup releases whatever we hold
    const start = term.attempts.get(seq);
    for (const s of term.attempts.keys()) if (s <= seq) term.attempts.delete(s);
    term.seq = Math.max(term.seq, seq);
    if (conn !== term.leaseConn || rev > term.leaseRev) {
      term.leaseRev = rev;
      term.leaseConn = conn;
    }
    if (start !== undefined && start + this.opts.renewDeadlineMs > term.validUntil) {
      term.validUntil = start + this.opts.renewDeadlineMs;
    }
    if (start === undefined) {
      // Confirmed by a read (after a reconnection or a late answer): that
      // extends nothing, so renew at once rather than a retry period later,
      // when the deadline may already have passed.
      this.setTimer('deadline', term.validUntil - this.clock.now(), () => this.evaluate());
      this.setTimer('renew', 0, () => this.renew(term));
      return;
    }
    this.armTerm(term, start);
  }

  /** A renewal hit REV_MISMATCH: either an earlier renewal of ours landed late, or the lease is gone. */
  private resolveRenewal(term: Term): void {
    this.spawn(async () => {
      let conn = 0;
      const f = await this.connected()
        .then((c) => {
          conn = c;
          return this.doozer.get(this.leasePath, undefined, {
            timeoutMs: Math.max(1, term.validUntil - this.clock.now()),
            connectionId: c,
          });
        })
        .catch(() => null);
      if (this.term !== term) return;
      const r = f ? parseLease(f.text) : null;
      if (f && r && this.isOurs(r, term)) {
        this.renewed(term, r.seq, f.rev, conn);
        return;
      }
      if (!f) {
        this.setTimer('renew', this.opts.retryPeriodMs / 4, () => this.renew(term));
        return;
      }
      void this.stepDown('lease-lost', `the lease is now held by ${r?.holder ?? 'nobody'}`);
    });
  }

  /** Replace a master that has not renewed for `leaseMs` (or never took a lease). */
  private depose(electionRev: number, leaseRev: number): void {
    this.deposing = true;
    this.spawn(async () => {
      try {
        // Confirm with fresh reads that nothing changed: another participant
        // may have deposed it already, or a late renewal may have landed.
        const [l, e] = await Promise.all([
          this.doozer.get(this.leasePath, undefined, this.bound()),
          this.doozer.get(this.electionPath, undefined, this.bound()),
        ]);
        if (e.rev !== electionRev) {
          this.deposing = false;
          this.backoffUntil = this.clock.now() + this.jitterMs();
          this.evaluate();
          return;
        }
        if (l.rev !== leaseRev) {
          this.deposing = false;
          this.observe({ kind: 'lease', file: leaseFile(l.rev, l.text) });
          this.evaluate();
          return;
        }
        const master = this.election?.master ?? '?';
        await this.doozer.del(this.electionPath, electionRev, this.bound());
        this.log.warn(
          `election ${this.name}: deposed ${master} (term ${electionRev}): no lease renewal seen for ${this.opts.leaseMs} ms`,
        );
        this.deposing = false;
        if (this.election?.rev === electionRev) {
          this.observe({ kind: 'election', file: null, at: electionRev + 1 });
          this.skipJitter = true; // we saw it first: run for master at once
        }
      } catch (err) {
        this.deposing = false;
        if (err instanceof DoozerPermissionError) return this.fatal(err);
        if (!isRevMismatch(err)) this.failed('depose the master', err);
      }
      this.updateState();
      this.evaluate();
    });
  }

  /**
   * Ends our term now. The term's signal aborts at once; the lease is
   * released and the election file deleted in the background (returned
   * promise), so others can take over without waiting for the lease.
   */
  private stepDown(reason: StepDownReason, message: string): Promise<void> {
    const term = this.term;
    if (!term) return Promise.resolve();
    this.term = null;
    this.clearTimer('renew');
    this.clearTimer('deadline');
    const err = new MasterStepDownError(reason, term.fencingToken, message);
    term.controller.abort(err);
    const voluntary = reason === 'resigned' || reason === 'forced' || reason === 'election-changed';
    this.log[voluntary ? 'log' : 'warn'](
      `election ${this.name}: ${this.address} ${err.message.replace(/^stepped/, 'steps')}`,
    );
    if (!term.announced) {
      this.log.warn(
        `election ${this.name}: term ${term.fencingToken} ended before becomeMaster could be called (a notification handler is still running); it is given back`,
      );
    }
    if (reason === 'resigned' || reason === 'become-master-failed' || !term.announced) {
      this.abstain = {
        until: this.clock.now() + this.opts.leaseMs,
        afterToken: term.fencingToken,
      };
    }
    // Losing the lease or the deadline is an error; a new election is not. A
    // term that was never announced (becomeMaster not called) is not reported.
    const lost = reason === 'lease-lost' || reason === 'renew-deadline' || reason === 'store-reset';
    if (lost && term.announced) {
      this.deliver('electionError', () => this.receiver.electionError?.(err));
    }
    const hint = { conn: term.leaseConn, leaseRev: term.leaseRev, seq: term.seq };
    const done =
      reason === 'store-reset'
        ? Promise.resolve()
        : this.holdRelease(term).then(() => this.addCleanup(term.fencingToken, term.nonce, hint));
    this.updateState();
    this.evaluate();
    return done;
  }

  /** Runs `beforeRelease` for a finished term, for at most `leaseMs - renewDeadlineMs`. */
  private async holdRelease(term: Term): Promise<void> {
    const hook = this.opts.beforeRelease;
    if (!hook) return;
    this.holding.add(term.fencingToken);
    try {
      const limit = this.opts.leaseMs - this.opts.renewDeadlineMs;
      const work = (async () => hook(term))().catch((err: unknown) => this.report(err));
      await this.withTimeout(work, limit, `beforeRelease of term ${term.fencingToken}`);
    } finally {
      this.holding.delete(term.fencingToken);
    }
    this.evaluate();
  }

  private addCleanup(token: number, nonce: string, hint?: Cleanup['hint']): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const existing = this.cleanups.find((c) => c.token === token);
    if (existing) return existing.done;
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    this.cleanups.push({ token, nonce, hint, done, resolve, running: false });
    this.runCleanups();
    return done;
  }

  /** Releases the lease of finished terms (if still ours) and deletes their election file (if unchanged). */
  private runCleanups(): void {
    for (const c of this.cleanups) {
      if (c.running || this.stopped) continue;
      c.running = true;
      this.spawn(async () => {
        try {
          // Release first: whoever sees the delete then finds the lease free.
          await this.releaseLease(c.token, c.nonce, c.hint);
          await this.deleteElection(c.token, c.hint);
          this.cleanups = this.cleanups.filter((x) => x !== c);
          c.resolve();
        } catch (err) {
          this.debug(`cleanup of term ${c.token} failed, will retry: ${describe(err)}`);
          c.running = false;
          this.setTimer('cleanup', this.opts.retryPeriodMs / 2, () => this.runCleanups());
        }
      });
    }
  }

  /**
   * Writes `released` over our record of term `token`, if the lease still
   * holds it. Fast path: the rev of our own last write, on its connection.
   * Otherwise (or on a mismatch) read the lease on the current connection and
   * release at the rev read there.
   */
  private async releaseLease(token: number, nonce: string, hint: Cleanup['hint']): Promise<void> {
    const released = (seq: number): string => this.record('released', token, seq + 1, newNonce());
    if (hint && hint.seq >= 0 && hint.conn === this.doozer.connectionId) {
      try {
        await this.doozer.set(
          this.leasePath,
          hint.leaseRev,
          released(hint.seq),
          this.bound(hint.conn),
        );
        return;
      } catch (err) {
        if (!isRevMismatch(err) && !(err instanceof DoozerConnectionError)) throw err;
      }
    }
    for (let i = 0; i < 5; i++) {
      const conn = await this.connected();
      const f = await this.doozer.get(this.leasePath, undefined, this.bound(conn));
      const r = parseLease(f.text);
      if (!r || r.id !== this.id || r.term !== token || r.nonce !== nonce || r.state !== 'held') {
        return; // not ours
      }
      try {
        await this.doozer.set(this.leasePath, f.rev, released(r.seq), this.bound(conn));
        return;
      } catch (err) {
        if (!isRevMismatch(err)) throw err;
      }
    }
  }

  /** Deletes the election file of term `token` if it is still that term's (a compare-and-set on its rev). */
  private async deleteElection(token: number, hint: Cleanup['hint']): Promise<void> {
    let conn = hint?.conn ?? 0;
    if (conn !== this.doozer.connectionId) {
      // Another connection: confirm on it that the file is still our term's.
      conn = await this.connected();
      const f = await this.doozer.get(this.electionPath, undefined, this.bound(conn));
      if (f.rev !== token || f.text !== this.address) return;
    }
    try {
      await this.doozer.del(this.electionPath, token, this.bound(conn));
    } catch (err) {
      if (!isRevMismatch(err)) throw err; // changed: not ours any more
    }
  }

  // ---------------------------------------------------------------- plumbing

  private record(state: LeaseRecord['state'], term: number, seq: number, nonce: string): string {
    return encodeLease({ v: 1, state, term, holder: this.address, id: this.id, seq, nonce });
  }

  /** Whether a lease record is the one our term `term` wrote. */
  private isOurs(r: LeaseRecord | null, term: Term): boolean {
    return (
      r !== null &&
      r.id === this.id &&
      r.term === term.fencingToken &&
      r.nonce === term.nonce &&
      r.state === 'held'
    );
  }

  private sampleRtt(start: number): void {
    const rtt = this.clock.now() - start;
    if (rtt >= 0) this.writeRttMs = this.writeRttMs * 0.8 + rtt * 0.2;
  }

  private failed(what: string, err: unknown): void {
    if (err instanceof DoozerPermissionError) return this.fatal(err);
    this.backoff();
    if (err instanceof DoozerConnectionError) {
      this.debug(`could not ${what}: ${describe(err)}`);
      return;
    }
    this.report(
      new Error(`election ${this.name}: could not ${what}: ${describe(err)}`, { cause: err }),
    );
  }

  private updateState(): void {
    let next: ElectionState;
    if (this.stopped) next = { role: 'stopped', master: '', term: 0 };
    else if (this.term?.announced)
      next = { role: 'master', master: this.address, term: this.term.fencingToken };
    else if (this.term) next = { role: 'candidate', master: '', term: 0 };
    else if (this.election && this.election.rev !== this.acquiring?.electionRev) {
      next = { role: 'slave', master: this.election.master, term: this.election.rev };
    } else if (this.participating && !this.abstain)
      next = { role: 'candidate', master: '', term: 0 };
    else next = { role: 'slave', master: '', term: 0 };
    this.stateSubject.next(next);
  }

  /** Queues a receiver notification behind the previous ones. */
  private deliver(what: string, fn: () => void | Promise<void>): void {
    this.delivery = this.delivery.then(async () => {
      try {
        await fn();
      } catch (err) {
        this.log.error(`election ${this.name}: ${what} handler failed: ${describe(err)}`);
      }
    });
  }

  private report(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.log.warn(`election ${this.name}: ${e.message}`);
    this.deliver('electionError', () => this.receiver.electionError?.(e));
  }

  private fatal(err: Error): void {
    if (this.stopped) return;
    const fatal = new ElectionFatalError(`election ${this.name} stopped: ${err.message}`, {
      cause: err,
    });
    this.log.error(fatal.message);
    if (this.term) void this.stepDown('fatal', err.message);
    this.deliver('electionFatal', () => this.receiver.electionFatal?.(fatal));
    this.stop();
  }

  /** Stops; `stoppedPromise` settles once queued notifications are delivered, or after `deliveryLimitMs`. */
  private stop(deliveryLimitMs = this.opts.renewDeadlineMs): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.term) {
      const term = this.term;
      this.term = null;
      term.controller.abort(
        new MasterStepDownError('fatal', term.fencingToken, 'the election stopped'),
      );
    }
    this.epoch++;
    this.watchAbort?.abort();
    for (const name of [...this.timers.keys()]) this.clearTimer(name);
    for (const wake of this.sleepers.values()) wake();
    this.sleepers.clear();
    for (const c of this.cleanups) c.resolve();
    this.cleanups = [];
    this.updateState();
    this.stateSubject.complete();
    // Stopped once queued notifications are delivered, but never wait forever
    // on a handler that hangs.
    let timer: unknown;
    void Promise.race([
      this.delivery,
      new Promise<void>((resolve) => {
        timer = this.clock.setTimer(resolve, deliveryLimitMs);
      }),
    ]).then(() => {
      this.clock.clearTimer(timer);
      this.stoppedResolve();
    });
  }

  private setTimer(name: string, ms: number, fn: () => void): void {
    if (this.stopped) return;
    this.clearTimer(name);
    const handle = this.clock.setTimer(
      () => {
        this.timers.delete(name);
        if (!this.stopped) fn();
      },
      Math.max(0, ms),
    );
    this.timers.set(name, handle);
  }

  private clearTimer(name: string): void {
    const h = this.timers.get(name);
    if (h !== undefined) {
      this.clock.clearTimer(h);
      this.timers.delete(name);
    }
  }

  /** A timer as a promise; it also resolves when the client stops. `cancel()` disarms it. */
  private sleep(ms: number): { promise: Promise<void>; cancel(): void } {
    const name = `sleep-${++this.sleepSeq}`;
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => (wake = resolve));
    if (this.stopped) {
      wake();
      return { promise, cancel: () => {} };
    }
    this.sleepers.set(name, wake);
    this.setTimer(name, ms, () => {
      this.sleepers.delete(name);
      wake();
    });
    return {
      promise,
      cancel: () => {
        this.clearTimer(name);
        this.sleepers.delete(name);
      },
    };
  }

  private async withTimeout(p: Promise<void>, ms: number, what: string): Promise<void> {
    let timedOut = false;
    const timer = this.sleep(ms);
    await Promise.race([
      p,
      timer.promise.then(() => {
        timedOut = true;
      }),
    ]);
    timer.cancel();
    if (timedOut) this.log.warn(`election ${this.name}: ${what} did not finish within ${ms} ms`);
  }

  /**
   * Steps down now if the renew deadline has passed: a process that was
   * frozen must not report itself master before its timers get to run.
   */
  private expire(): void {
    if (this.term && !this.stopped && this.clock.now() >= this.term.validUntil) {
      void this.stepDown('renew-deadline', 'no renewal completed within renewDeadlineMs');
    }
  }

  private debug(message: string): void {
    this.log.debug?.(`election ${this.name}: ${message}`);
  }
}

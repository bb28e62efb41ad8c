/**
 * The election runner: the one place where events come in (what the
 * follower sees, timers, the answers to writes, calls from the client) and
 * effects go out (timers, lock writes, notifications). Every event runs the
 * same way, top to bottom:
 *
 *   observe (update the view) -> decide (pure, decide.ts) -> act -> notify
 *
 * It uses only the storage port: it never sees a path, a revision or a
 * connection. The master's own part (renewals, stepping down, giving terms
 * back) is in master.ts.
 */
import { jittered } from '../../shared/backoff.js';
import { ElectionFatalError, MasterStepDownError, type StepDownReason } from '../errors.js';
import type { ElectionLock, LockCallOptions, LockRead, LockSnapshot } from '../port.js';
import type { ResolvedElectionOptions } from '../options.js';
import type { ElectionState } from '../types.js';
import {
  abstaining,
  decide,
  jitterWindow,
  namesMaster,
  type Decision,
  type ElectionView,
  type Phase,
} from './decide.js';
import { Follower, type FollowerSink } from './follower.js';
import { Campaign } from './campaign.js';
import { MasterPart } from './master.js';
import { describe, type Notifier } from './notifier.js';
import { electionState } from './state.js';
import { ActiveTerm } from './term.js';
import { Timers } from './timers.js';

type Act = Extract<Decision, { kind: 'create' | 'depose' }>;

/** How many of our own recent term ids are remembered (to tell our records from others'). */
const OWN_TERMS_KEPT = 16;

export class ElectionRunner implements FollowerSink {
  // -------------------------------------------------------------- the view
  phase: Phase<ActiveTerm> = { kind: 'following' };
  synced = false;
  snapshot: LockSnapshot | null = null;
  livenessSeenAt: number;
  backoffUntil = 0;
  abstain: ElectionView['abstain'] = null;
  readonly holding = new Set<string>();
  deposedKey: string | null = null;
  staleKey: string | null = null;

  // ------------------------------------------------------- runner's own part
  readonly timers: Timers;
  readonly follower: Follower;
  readonly master: MasterPart;
  readonly campaign: Campaign;
  /** Term ids we won (recent ones): their records are not reported as someone else's mastership. */
  private readonly ownTerms = new Set<string>();
  /** The term last reported with `becomeSlave`. */
  private notifiedTermId = '';
  private writeRttMs = 1;
  /** The wait of an election on an empty store was logged (until a record is seen). */
  private emptyNoted = false;
  /** Run at once (no jitter) on the next create: set after we deposed a master ourselves. */
  skipJitter = false;
  /** The kind of action waiting out its jitter delay. */
  private pending: Act['kind'] | null = null;
  private inflight = 0;
  /** Follower events held back while a create is in flight (see holdBack). */
  private readonly heldBack: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly lock: ElectionLock,
    readonly opts: ResolvedElectionOptions,
    readonly address: string,
    readonly participating: boolean,
    readonly notes: Notifier,
    private readonly onState: (state: ElectionState) => void,
    private readonly onStop: () => void,
  ) {
    this.timers = new Timers(opts.clock);
    // Until the first read, count from now: a record not seen yet may be held.
    this.livenessSeenAt = opts.clock.now();
    this.follower = new Follower(
      lock,
      this,
      this.timers,
      notes,
      opts.renewDeadlineMs,
      opts.retryPeriodMs,
    );
    this.master = new MasterPart(this);
    this.campaign = new Campaign(this);
  }

  get now(): number {
    return this.opts.clock.now();
  }

  get stopped(): boolean {
    return this.phase.kind === 'stopped';
  }

  /** The view decide() reads. */
  view(): ElectionView {
    return {
      lockId: this.lock.id,
      capabilities: this.lock.capabilities,
      participating: this.participating,
      synced: this.synced,
      snapshot: this.snapshot,
      livenessSeenAt: this.livenessSeenAt,
      backoffUntil: this.backoffUntil,
      abstain: this.abstain,
      holding: this.holding,
      deposedKey: this.deposedKey,
      staleKey: this.staleKey,
    };
  }

  call(): LockCallOptions {
    return { timeoutMs: this.opts.renewDeadlineMs };
  }

  // ------------------------------------------------------------ events in

  read(read: LockRead): void {
    if (this.stopped) return;
    if (this.holdBack(() => this.read(read))) return;
    if (read.stateLost) this.storeLost();
    this.synced = true;
    this.observe(read);
  }

  change(snapshot: LockSnapshot): void {
    if (this.stopped) return;
    if (this.holdBack(() => this.change(snapshot))) return;
    this.observe(snapshot);
  }

  /**
   * While our own create is in flight we cannot tell our new term's record
   * from another's: what the follower reports is held back until the answer
   * comes, then taken in, in order.
   */
  private holdBack(event: () => void): boolean {
    if (this.phase.kind !== 'campaigning') return false;
    this.heldBack.push(event);
    return true;
  }

  flushHeldBack(): void {
    const events = this.heldBack.splice(0);
    for (const event of events) event();
  }

  unsynced(): void {
    this.synced = false;
  }

  fatal(err: unknown): void {
    if (this.stopped) return;
    const message = describe(err);
    const fatal = new ElectionFatalError(`election ${this.notes.name} stopped: ${message}`, {
      cause: err,
    });
    this.notes.error(`stopped: ${message}`);
    if (this.phase.kind === 'master') void this.master.stepDown('fatal', message);
    this.notes.deliver('electionFatal', (r) => r.electionFatal?.(fatal));
    this.stop();
  }

  /** A read outside the follower found that the store lost its state: start over. */
  stateLost(): void {
    if (this.stopped) return;
    this.storeLost();
    void this.follower.resync();
  }

  // -------------------------------------------------------------- observe

  /** Takes in a snapshot, then decides; the master judges its term before anyone is told of another. */
  private observe(snapshot: LockSnapshot): void {
    if (this.predatesOurTerm(snapshot)) return;
    const prev = this.snapshot;
    this.snapshot = snapshot;
    if (prev === null || prev.liveness !== snapshot.liveness) this.livenessSeenAt = this.now;
    if (this.deposedKey !== null && snapshot.version.key !== this.deposedKey) {
      this.deposedKey = null;
    }
    if (this.staleKey !== null && snapshot.version.key !== this.staleKey) this.staleKey = null;
    const r = snapshot.record;
    if (r !== null) this.emptyNoted = false;
    if (
      this.phase.kind === 'master' &&
      r?.termId === this.phase.term.termId &&
      r.state === 'held'
    ) {
      this.phase.term.confirmed = true;
    }
    this.evaluate();
    if (namesMaster(r) && !this.ownTerms.has(r.termId) && r.termId !== this.notifiedTermId) {
      this.notifiedTermId = r.termId;
      if (this.abstain && r.token > this.abstain.afterToken) this.abstain = null;
      const { holder, token } = r;
      this.notes.deliver('becomeSlave', (rc) => rc.becomeSlave(holder, token));
    }
    this.publish();
  }

  /**
   * Whether a snapshot shows a term older than the one we hold: one seen
   * before our create landed and taken in after it (held back, or a watch
   * that lags). It tells nothing new: it is not reported (no `becomeSlave`
   * after our `becomeMaster`) and does not replace what we know.
   */
  private predatesOurTerm(snapshot: LockSnapshot): boolean {
    const r = snapshot.record;
    if (this.phase.kind !== 'master' || r === null || r.token >= this.phase.term.token) {
      return false;
    }
    this.notes.debug(
      `ignored a record of term ${r.token}, older than our term ${this.phase.term.token}`,
    );
    return true;
  }

  /** The store lost or replaced its state: every term ends, every version we kept is meaningless. */
  private storeLost(): void {
    this.notes.warn('the store lost its state; starting over');
    if (this.phase.kind === 'master') {
      void this.master.stepDown('store-reset', 'the store lost its state');
    }
    this.master.dropCleanups();
    this.ownTerms.clear();
    this.notifiedTermId = '';
    this.snapshot = null;
    this.deposedKey = null;
    this.staleKey = null;
    this.livenessSeenAt = this.now;
  }

  // --------------------------------------------------------------- decide

  /** Decides on the current view; arms at most one decision timer. */
  evaluate(): void {
    if (this.stopped) return;
    const now = this.now;
    const d = decide(this.view(), this.phase, now, this.opts);
    switch (d.kind) {
      case 'step-down':
        void this.master.stepDown(d.reason, d.message);
        return;
      case 'none':
        this.pending = null;
        this.timers.clear('decide');
        return;
      case 'wait':
        this.noteEmptyStore(d.until - now);
        this.pending = null;
        this.timers.set('decide', d.until - now, () => this.evaluate());
        return;
      case 'read':
        // The watch has not shown what a write of ours found: read it.
        this.pending = null;
        this.timers.clear('decide');
        this.staleKey = null;
        void this.follower.resync();
        return;
      default:
        this.jitterThenAct(d);
    }
  }

  /**
   * Says once, when the first election on an empty store waits (a missing
   * record the store cannot vouch for is waited out like a silent master),
   * how long and why, so that the wait does not look like a hang.
   */
  private noteEmptyStore(waitMs: number): void {
    const v = this.view();
    if (this.emptyNoted || v.snapshot?.record !== null || v.capabilities.absentProvesNoMaster)
      return;
    if (v.capabilities.expiry !== 'observer' || this.now < v.backoffUntil) return;
    if (abstaining(v, this.now)) return;
    this.emptyNoted = true;
    this.notes.info(
      `no lease is on record: waiting ${Math.ceil(waitMs)} ms (leaseMs) before running for master, ` +
        'because a store that lost its state looks empty while its master may still be at work ' +
        '(see docs/election-protocol.md, "A store that lost its state")',
    );
  }

  /** Waits a random delay below the jitter window, decides again, and acts if the answer holds. */
  private jitterThenAct(d: Act): void {
    if (this.skipJitter) {
      this.skipJitter = false;
      this.act(d);
      return;
    }
    if (this.pending === d.kind) return; // already waiting out its jitter
    this.pending = d.kind;
    const delay = Math.random() * this.jitterMs();
    this.timers.set('decide', delay, () => {
      this.pending = null;
      const again = decide(this.view(), this.phase, this.now, this.opts);
      if (again.kind === d.kind) this.act(again);
      else this.evaluate();
    });
  }

  // ------------------------------------------------------------------ act

  private act(d: Act): void {
    if (d.kind === 'create') this.campaign.create(d);
    else this.campaign.depose(d);
    this.publish();
  }

  // --------------------------------------------------------------- notify

  /** Publishes the state (state$ drops repeats). */
  publish(): void {
    this.onState(electionState(this.phase, this.view(), this.address));
  }

  // ------------------------------------------------------------- plumbing

  /** Runs an async effect, counted for whenIdle(); its result handlers run synchronously. */
  spawn(effect: () => Promise<void>): void {
    this.inflight++;
    effect()
      .catch((err: unknown) => this.notes.report(err))
      .finally(() => {
        this.inflight--;
        if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
  }

  /** Resolves once no write or read of the runner is in flight. */
  async settled(): Promise<void> {
    while (this.inflight > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  get busy(): boolean {
    return this.inflight > 0;
  }

  /** A write failed: fatal errors stop the election; others back off and are retried. */
  failed(what: string, err: unknown): void {
    if (this.lock.classify(err) === 'fatal') return this.fatal(err);
    this.backoffUntil = this.now + jittered(this.opts.retryPeriodMs, 0.25, 0.5);
    this.notes.debug(`could not ${what}: ${describe(err)}`);
    this.evaluate();
    this.publish();
  }

  /** The upper bound of the jitter delay now. */
  jitterMs(): number {
    return jitterWindow(this.opts, this.writeRttMs, this.campaign.contention);
  }

  sampleRtt(start: number): void {
    const rtt = this.now - start;
    if (rtt >= 0) this.writeRttMs = this.writeRttMs * 0.8 + rtt * 0.2;
  }

  rememberOwn(termId: string): void {
    this.ownTerms.add(termId);
    if (this.ownTerms.size > OWN_TERMS_KEPT) {
      this.ownTerms.delete(this.ownTerms.values().next().value as string);
    }
  }

  /** Ends a term of ours with `reason` (see master.ts). */
  stepDown(reason: StepDownReason, message: string, next?: Phase<ActiveTerm>): Promise<void> {
    return this.master.stepDown(reason, message, next);
  }

  /** Stops: no more events, timers or writes; the lock is closed. */
  stop(): void {
    if (this.stopped) return;
    const phase = this.phase;
    this.phase = { kind: 'stopped' };
    if (phase.kind === 'master') {
      phase.term.end(new MasterStepDownError('fatal', phase.term.token, 'the election stopped'));
    }
    this.follower.stop();
    this.timers.close();
    this.master.dropCleanups();
    this.publish();
    this.onStop();
  }
}

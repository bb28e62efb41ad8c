/**
 * The master's part of the runner: announcing a won term (with
 * `becomeMaster` bounded by `becomeMasterTimeoutMs`), renewing it, stepping
 * down, and giving ended terms back (after `beforeRelease`), retried until
 * the store confirms.
 */
import { jittered } from '../../shared/backoff.js';
import { MAX_DURATION_MS } from '../../shared/duration.js';
import { BecomeMasterTimeoutError, MasterStepDownError, type StepDownReason } from '../errors.js';
import type { LockTerm, RenewResult } from '../port.js';
import type { MasterElectionEventReceiver } from '../types.js';
import type { Phase } from './decide.js';
import { describe } from './notifier.js';
import type { ElectionRunner } from './runner.js';
import type { ActiveTerm } from './term.js';

/** An ended term of ours still to be given back. */
interface Cleanup {
  /** The latest handle of the term (a renewal that lands after the step-down updates it). */
  term: LockTerm;
  running: boolean;
  readonly done: Promise<void>;
  readonly resolve: () => void;
}

/** Ends of a term that are the election's failure (reported through `electionError`). */
const INVOLUNTARY: ReadonlySet<StepDownReason> = new Set([
  'lease-lost',
  'renew-deadline',
  'store-reset',
]);
/** Ends after which this participant sits out the next election. */
const ABSTAIN_AFTER: ReadonlySet<StepDownReason> = new Set(['resigned', 'become-master-failed']);

export class MasterPart {
  private readonly cleanups = new Map<string, Cleanup>();
  /** A `becomeMaster` still running past `becomeMasterTimeoutMs`: its term, and when the bound passed. */
  private overdueCall: { readonly token: number; readonly since: number } | undefined;

  constructor(private readonly r: ElectionRunner) {}

  /** Starts a won term: arms its timers and queues `becomeMaster`. */
  begin(term: ActiveTerm, start: number): void {
    const r = this.r;
    r.notes.log(`${r.address} is master (term ${term.token})`);
    this.arm(term, start);
    r.notes.deliver('becomeMaster', async (receiver) => {
      // The term may have ended while earlier notifications were delivered.
      if (!this.current(term) || !term.inForce()) return;
      const overdue = this.overdueCall;
      if (overdue) {
        // (Won while a create was in flight as the bound passed.) Never two
        // becomeMaster calls at once: give it back unannounced.
        void this.stepDown(
          'become-master-timeout',
          `becomeMaster of term ${overdue.token} is still running past becomeMasterTimeoutMs`,
        );
        this.sitOut(); // (the win cleared it)
        r.evaluate();
        return;
      }
      // Master from here on: isMaster() and the state say so from this call.
      term.announced = true;
      r.publish();
      await this.callBecomeMaster(receiver, term);
    });
    r.evaluate();
    r.publish();
  }

  /**
   * Calls `becomeMaster`, for at most `becomeMasterTimeoutMs`. Past that
   * the call is left running: it is reported, the term is given up, and this
   * participant sits out until the call settles (the notifications go on).
   */
  private async callBecomeMaster(
    receiver: MasterElectionEventReceiver,
    term: ActiveTerm,
  ): Promise<void> {
    const r = this.r;
    const limit = r.opts.becomeMasterTimeoutMs;
    const call = (async () => receiver.becomeMaster(term.view))().then(
      () => ({ ok: true as const }),
      (err: unknown) => ({ ok: false as const, err }),
    );
    if (!(await r.timers.bound(call, limit))) {
      if (r.stopped) return; // close(): the timers were closed, not the bound passed
      this.overdue(term, call);
      return;
    }
    const outcome = await call;
    if (outcome.ok) return;
    r.notes.report(outcome.err);
    if (this.current(term)) {
      void this.stepDown('become-master-failed', `becomeMaster failed: ${describe(outcome.err)}`);
    }
  }

  /** `becomeMaster` of `term` overran its bound: report, give the term up, sit out until it settles. */
  private overdue(term: ActiveTerm, call: Promise<{ ok: boolean; err?: unknown }>): void {
    const r = this.r;
    const limit = r.opts.becomeMasterTimeoutMs;
    const since = r.now;
    const entry = { token: term.token, since };
    this.overdueCall = entry;
    r.notes.report(new BecomeMasterTimeoutError(limit, term.token));
    this.sitOut();
    if (this.current(term)) {
      void this.stepDown(
        'become-master-timeout',
        `becomeMaster has not completed within ${limit} ms (becomeMasterTimeoutMs)`,
      );
    } else {
      r.evaluate();
      r.publish();
    }
    void call.then((outcome) => {
      if (this.overdueCall !== entry) return;
      this.overdueCall = undefined;
      const lateMs = Math.round(r.now - since);
      if (outcome.ok) {
        r.notes.warn(
          `becomeMaster of term ${term.token} completed ${lateMs} ms after its bound (becomeMasterTimeoutMs); its term had been given up`,
        );
      } else {
        r.notes.warn(
          `becomeMaster of term ${term.token} failed ${lateMs} ms after its bound (becomeMasterTimeoutMs): ${describe(outcome.err)}`,
        );
      }
      if (r.stopped) return;
      // Then as after a failed becomeMaster: the rest of leaseMs from the
      // bound, unless a newer term has begun meanwhile.
      const until = since + r.opts.leaseMs;
      const newer = (r.snapshot?.record?.token ?? 0) > term.token;
      r.abstain = !newer && r.now < until ? { until, afterToken: term.token } : null;
      r.evaluate();
      r.publish();
    });
  }

  /** Out of the election while a `becomeMaster` is overdue: no create (a new term by others does not end it). */
  private sitOut(): void {
    const r = this.r;
    r.abstain = { until: r.now + MAX_DURATION_MS, afterToken: Number.MAX_SAFE_INTEGER };
  }

  /**
   * Why this participant is out of the election because `becomeMaster` is
   * overdue, or `undefined` when it is not (for `health()`).
   */
  overdueReason(): string | undefined {
    const o = this.overdueCall;
    if (!o) return undefined;
    const ms = Math.round(this.r.now - o.since);
    return `becomeMaster of term ${o.token} still running ${ms} ms past becomeMasterTimeoutMs (${this.r.opts.becomeMasterTimeoutMs} ms); this process does not take part until it settles`;
  }

  /** Whether `term` is the runner's current term. */
  current(term: ActiveTerm): boolean {
    return this.r.phase.kind === 'master' && this.r.phase.term === term;
  }

  /** Arms the deadline, and the next renewal a retry period after the start of the last good write. */
  private arm(term: ActiveTerm, start: number): void {
    const r = this.r;
    r.timers.set('deadline', term.validUntil - r.now, () => r.evaluate());
    r.timers.set('renew', start + r.opts.retryPeriodMs - r.now, () => this.renew(term));
  }

  /** Renews the term: a compare-and-set on its last version. */
  private renew(term: ActiveTerm): void {
    const r = this.r;
    if (!this.current(term) || term.renewing) return;
    const now = r.now;
    if (now >= term.validUntil) return r.evaluate();
    if (!term.announced) {
      // becomeMaster waits behind a notification handler that has not
      // finished. A term nobody was told of is not kept alive: unless it is
      // announced before its deadline, it ends there and others take over.
      r.timers.set('renew', r.opts.retryPeriodMs / 4, () => this.renew(term));
      return;
    }
    const attempt = ++term.lastAttempt;
    term.attempts.set(attempt, now);
    term.renewing = true;
    r.spawn(async () => {
      let result: RenewResult;
      try {
        result = await r.lock.renew(term.lockTerm, attempt, {
          timeoutMs: Math.max(1, term.validUntil - now),
        });
      } catch (err) {
        term.renewing = false;
        if (r.lock.classify(err) === 'fatal') return r.fatal(err);
        if (!this.current(term)) return;
        r.notes.debug(`renewal ${attempt} of term ${term.token} failed: ${describe(err)}`);
        r.timers.set('renew', jittered(r.opts.retryPeriodMs, 0.25, 0.5), () => this.renew(term));
        return;
      }
      term.renewing = false;
      r.sampleRtt(now);
      this.renewed(term, result);
    });
  }

  private renewed(term: ActiveTerm, result: RenewResult): void {
    const r = this.r;
    if (result.kind !== 'lost') {
      term.lockTerm = result.term;
      const cleanup = this.cleanups.get(term.termId);
      if (cleanup) cleanup.term = result.term; // ended meanwhile: give back what the renewal wrote
    }
    if (!this.current(term)) return;
    if (result.kind === 'lost') {
      void this.stepDown('lease-lost', `the lease is now held by ${result.holder || 'nobody'}`);
      return;
    }
    const start =
      result.kind === 'renewed' ? term.extend(result.attempt, r.opts.renewDeadlineMs) : undefined;
    if (start !== undefined) {
      term.heldInARow = 0;
      this.arm(term, start);
    } else {
      // Confirmed by a read (after a reconnection or a late answer): that
      // extends nothing, so renew at once rather than a retry period later,
      // when the deadline may already have passed (but not in a tight loop).
      term.heldInARow++;
      r.timers.set('deadline', term.validUntil - r.now, () => r.evaluate());
      const again = term.heldInARow > 1 ? r.opts.retryPeriodMs / 4 : 0;
      r.timers.set('renew', again, () => this.renew(term));
    }
    r.publish();
  }

  /**
   * Ends the current term now: its signal aborts at once; the term is given
   * back in the background (the returned promise), after `beforeRelease`,
   * so that others can take over without waiting out a lease.
   */
  stepDown(
    reason: StepDownReason,
    message: string,
    next: Phase<ActiveTerm> = { kind: 'following' },
  ): Promise<void> {
    const r = this.r;
    const phase = r.phase;
    if (phase.kind !== 'master') return Promise.resolve();
    const term = phase.term;
    r.phase = next;
    r.timers.clear('renew');
    r.timers.clear('deadline');
    const err = new MasterStepDownError(reason, term.token, message);
    term.end(err);
    const line = `${r.address} ${err.message.replace(/^stepped/, 'steps')}`;
    if (reason === 'resigned' || reason === 'forced' || reason === 'election-changed') {
      r.notes.log(line);
    } else {
      r.notes.warn(line);
    }
    if (!term.announced) {
      r.notes.warn(
        `term ${term.token} ended before becomeMaster could be called (a notification handler is still running); it is given back`,
      );
    }
    // (While a becomeMaster is overdue, this participant sits out already: see overdue().)
    if ((ABSTAIN_AFTER.has(reason) || !term.announced) && !this.overdueCall) {
      r.abstain = { until: r.now + r.opts.leaseMs, afterToken: term.token };
    }
    // Losing the term is an error; a new election is not. A term that was
    // never announced is not reported.
    if (INVOLUNTARY.has(reason) && term.announced) {
      r.notes.deliver('electionError', (receiver) => receiver.electionError?.(err));
    }
    const done =
      reason === 'store-reset'
        ? Promise.resolve()
        : this.holdRelease(term).then(() => this.addCleanup(term.lockTerm));
    r.evaluate();
    r.publish();
    return done;
  }

  /** Runs `beforeRelease` for an ended term, for at most `leaseMs - renewDeadlineMs`. */
  private async holdRelease(term: ActiveTerm): Promise<void> {
    const r = this.r;
    const hook = r.opts.beforeRelease;
    if (!hook) return;
    r.holding.add(term.termId);
    try {
      const limit = r.opts.leaseMs - r.opts.renewDeadlineMs;
      const work = (async () => hook(term.view))().catch((err: unknown) => r.notes.report(err));
      if (!(await r.timers.bound(work, limit))) {
        r.notes.warn(`beforeRelease of term ${term.token} did not finish within ${limit} ms`);
      }
    } finally {
      r.holding.delete(term.termId);
    }
    r.evaluate();
    r.publish();
  }

  /** Gives a term back (retried until the store answers); resolves when done. */
  addCleanup(term: LockTerm): Promise<void> {
    if (this.r.stopped) return Promise.resolve();
    const existing = this.cleanups.get(term.termId);
    if (existing) return existing.done;
    let resolve!: () => void;
    const done = new Promise<void>((res) => (resolve = res));
    this.cleanups.set(term.termId, { term, running: false, done, resolve });
    this.runCleanups();
    return done;
  }

  /** Resolves once every pending give-back is done. */
  allCleanups(): Promise<void> {
    return Promise.all([...this.cleanups.values()].map((c) => c.done)).then(() => undefined);
  }

  /** Forgets every pending give-back (the store lost its state, or the election stopped). */
  dropCleanups(): void {
    for (const c of this.cleanups.values()) c.resolve();
    this.cleanups.clear();
  }

  private runCleanups(): void {
    const r = this.r;
    for (const [termId, c] of this.cleanups) {
      if (c.running || r.stopped) continue;
      c.running = true;
      r.spawn(async () => {
        try {
          await r.lock.release(c.term, r.call());
        } catch (err) {
          c.running = false;
          if (this.cleanups.get(termId) !== c) return;
          if (r.lock.classify(err) === 'fatal') {
            r.notes.warn(`could not give back term ${c.term.token}: ${describe(err)}`);
          } else {
            r.notes.debug(`giving back term ${c.term.token} failed, will retry: ${describe(err)}`);
            r.timers.set('cleanup', r.opts.retryPeriodMs / 2, () => this.runCleanups());
            return;
          }
        }
        if (this.cleanups.get(termId) === c) this.cleanups.delete(termId);
        c.resolve();
        r.evaluate();
        r.publish();
      });
    }
  }
}

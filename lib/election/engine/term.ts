/**
 * A term this participant won: the runner's record of it, and the read-only
 * view of it that user code gets ({@link MasterTerm}).
 */
import type { Clock } from '../clock.js';
import type { MasterStepDownError } from '../errors.js';
import type { LockTerm } from '../port.js';
import type { MasterTerm } from '../types.js';
import type { TermFacts } from './decide.js';

/** The runner's record of a term of ours. */
export class ActiveTerm implements TermFacts {
  readonly token: number;
  readonly termId: string;
  /** The latest term handle the lock gave us (renew and release take it). */
  lockTerm: LockTerm;
  validUntil: number;
  confirmed = false;
  /** Set when `becomeMaster` is called: from then on this process is master. */
  announced = false;
  /** A renewal is in flight. */
  renewing = false;
  /** Consecutive renewals answered `held` (confirmed by a read, nothing extended). */
  heldInARow = 0;
  /** The number of the last renewal attempt. */
  lastAttempt = 0;
  /** Start time of each renewal attempt not yet answered, by attempt (0: the create). */
  readonly attempts = new Map<number, number>();
  /** Clock time at which the term was won. */
  readonly wonAt: number;
  /** What user code sees. */
  readonly view: MasterTerm;
  private readonly controller = new AbortController();

  constructor(
    lockTerm: LockTerm,
    /** Start of the create that won it: the term runs `renewDeadlineMs` from there. */
    start: number,
    renewDeadlineMs: number,
    private readonly clock: Clock,
  ) {
    this.lockTerm = lockTerm;
    this.token = lockTerm.token;
    this.termId = lockTerm.termId;
    this.validUntil = start + renewDeadlineMs;
    this.attempts.set(0, start);
    this.wonAt = clock.now();
    this.view = termView(this);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get ended(): boolean {
    return this.controller.signal.aborted;
  }

  /** True while the term lasts and was announced; false at once past its deadline. */
  isValid(): boolean {
    return this.announced && !this.ended && this.clock.now() < this.validUntil;
  }

  /** Whether the term is still in force on the clock (announced or not). */
  inForce(): boolean {
    return !this.ended && this.clock.now() < this.validUntil;
  }

  /**
   * Extends the term after a renewal attempt `attempt` was found to be the
   * record: to that attempt's start plus `renewDeadlineMs`. Returns the
   * attempt's start, or `undefined` when it is not known (then nothing is
   * extended).
   */
  extend(attempt: number, renewDeadlineMs: number): number | undefined {
    const start = this.attempts.get(attempt);
    for (const a of [...this.attempts.keys()]) if (a <= attempt) this.attempts.delete(a);
    if (start !== undefined) this.validUntil = Math.max(this.validUntil, start + renewDeadlineMs);
    return start;
  }

  end(reason: MasterStepDownError): void {
    if (!this.ended) this.controller.abort(reason);
  }
}

/** A read-only view of a term: its token, deadline, signal and validity, nothing to change. */
function termView(term: ActiveTerm): MasterTerm {
  return Object.freeze(
    Object.create(Object.prototype, {
      fencingToken: { value: term.token, enumerable: true },
      deadline: { get: () => term.validUntil, enumerable: true },
      signal: { value: term.signal, enumerable: true },
      isValid: { value: () => term.isValid() },
      toString: { value: () => `master term ${term.token}` },
    }) as MasterTerm,
  );
}

/** Errors raised or reported by the election engine. */

/** Base class of every election error. */
export class ElectionError extends Error {
  override name = 'ElectionError';
}

/** A bad argument or option given to the election; `option` names it. */
export class ElectionConfigError extends ElectionError {
  override name = 'ElectionConfigError';
  constructor(
    /** The argument or option at fault, e.g. `name` or `renewDeadlineMs`. */
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
  }
}

/** Why a master term ended. */
export type StepDownReason =
  /** `resign()` or `close()` was called. */
  | 'resigned'
  /** The election file was deleted or replaced by another client (a forced election, or a takeover). */
  | 'election-changed'
  /** `forceMasterElection()` was called on the master. */
  | 'forced'
  /** Another process changed the lease file: the lease was taken over. */
  | 'lease-lost'
  /** No renewal completed within `renewDeadlineMs` of the last successful one's start. */
  | 'renew-deadline'
  /** `becomeMaster` threw or rejected. */
  | 'become-master-failed'
  /** `becomeMaster` had not settled within `becomeMasterTimeoutMs`. */
  | 'become-master-timeout'
  /** The server's store went back in time (state lost): every term ends. */
  | 'store-reset'
  /** The election stopped for a fatal error. */
  | 'fatal';

/**
 * A master term ended. This is the `reason` of the term's AbortSignal, and
 * (for involuntary ends) what `electionError` receives.
 */
export class MasterStepDownError extends ElectionError {
  override name = 'MasterStepDownError';
  constructor(
    readonly reason: StepDownReason,
    /** The fencing token of the term that ended. */
    readonly fencingToken: number,
    message: string,
  ) {
    super(`stepped down from master term ${fencingToken}: ${message}`);
  }
}

/**
 * `becomeMaster` had not settled within `becomeMasterTimeoutMs`: reported
 * through `electionError`. The term was given up so that another participant
 * can take over; this one does not take part until that call settles.
 */
export class BecomeMasterTimeoutError extends ElectionError {
  override name = 'BecomeMasterTimeoutError';
  constructor(
    /** The bound it exceeded (`becomeMasterTimeoutMs`). */
    readonly timeoutMs: number,
    /** The fencing token of the term it was called for. */
    readonly fencingToken: number,
  ) {
    super(
      `becomeMaster has not completed within ${timeoutMs} ms (becomeMasterTimeoutMs) in term ${fencingToken}; the term is given up so that another participant can take over`,
    );
  }
}

/** The election cannot go on (for example, access refused); it has stopped. */
export class ElectionFatalError extends ElectionError {
  override name = 'ElectionFatalError';
}

/**
 * A storage lock was handed something it did not issue (a version or term
 * from another lock or election), or was asked for what its participant may
 * not do (a passive participant creating a term). Nothing was written.
 */
export class LockArgumentError extends ElectionError {
  override name = 'LockArgumentError';
  constructor(
    /** The argument at fault, e.g. `basis`, `term`, `version`. */
    readonly argument: string,
    message: string,
  ) {
    super(`${argument}: ${message}`);
  }
}

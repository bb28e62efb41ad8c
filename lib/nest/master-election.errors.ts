import { ElectionError } from '../election/index.js';

/**
 * Doozer could not be reached when the application booted (with
 * `onUnreachable: 'fail'`). The message names the URI with its secret
 * shown as `sk=***`; `cause` is the client's error.
 */
export class MasterElectionConnectError extends ElectionError {
  override name = 'MasterElectionConnectError';
  constructor(
    /** The election's name. */
    readonly election: string,
    /** The URI (or store) it was connecting to, its secret redacted. */
    readonly uri: string,
    message: string,
    /** `backend`: what is named in the message (default `Doozer`). */
    options?: { cause?: unknown; backend?: string },
  ) {
    super(
      `election ${election}: cannot connect to ${options?.backend ?? 'Doozer'} at ${uri}: ${message}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
  }
}

/** The election has not started yet (before bootstrap, or still connecting) or has stopped. */
export class MasterElectionNotRunningError extends ElectionError {
  override name = 'MasterElectionNotRunningError';
}

/** Why `waitForMastership()` gave up. */
export type MastershipWaitReason =
  /** `timeoutMs` passed. */
  | 'timeout'
  /** The `signal` aborted (`cause` is its reason). */
  | 'aborted'
  /** The election stopped (application shutdown, or a fatal election error). */
  | 'stopped'
  /** The registration is not participating: this process can never become master. */
  | 'not-participating';

/** `waitForMastership()` gave up; `reason` says why. */
export class MastershipWaitError extends ElectionError {
  override name = 'MastershipWaitError';
  constructor(
    /**
     * Why it gave up: `'timeout'`, `'aborted'` (`cause` is the signal's
     * reason), `'stopped'` or `'not-participating'`; see {@link MastershipWaitReason}.
     */
    readonly reason: MastershipWaitReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * An `@OnBecomeMaster` handler did not complete within
 * `becomeMasterTimeoutMs`: the term is given up so another replica can take
 * over, the handler's `term.signal` aborts, and health reports unhealthy
 * until the handler settles.
 */
export class MasterHandlerTimeoutError extends ElectionError {
  override name = 'MasterHandlerTimeoutError';
  constructor(
    /** The election's name. */
    readonly election: string,
    /** The handler, as `Class.method`. */
    readonly handler: string,
    /** The bound it exceeded. */
    readonly timeoutMs: number,
    /** The fencing token of the term it was called for. */
    readonly fencingToken: number,
  ) {
    super(
      `@OnBecomeMaster handler "${handler}" of election "${election}" has not completed within ${timeoutMs} ms (term ${fencingToken}); the term is given up so that another replica can take over`,
    );
  }
}

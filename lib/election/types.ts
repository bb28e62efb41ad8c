import type { Clock } from './clock.js';

/** One master term of this process, handed to `becomeMaster`. */
export interface MasterTerm {
  /**
   * Fencing token: the rev of the election file written when this term
   * began. Revs of a Doozer store only grow, so every new term (of any
   * process) has a larger token: pass it along with leader-only writes to
   * other systems so they can refuse a deposed master's late writes.
   */
  readonly fencingToken: number;
  /**
   * The election clock's time (see `Clock.now()`) at which this term ends
   * unless a renewal extends it: the start of the last successful renewal plus
   * `renewDeadlineMs`.
   */
  readonly deadline: number;
  /** Aborts (with a {@link MasterStepDownError} reason) the moment this process stops being master. */
  readonly signal: AbortSignal;
  /**
   * True while the term lasts. Checks the clock, so it is false as soon as the
   * renew deadline has passed, even if no timer has fired yet (for example
   * right after the process was frozen by the OS).
   */
  isValid(): boolean;
}

/**
 * Receives the election's notifications, in order, one at a time (a callback
 * that returns a promise is awaited before the next one is delivered).
 * Mirrors the Go package's `MasterElectionEventReceiver`.
 */
export interface MasterElectionEventReceiver {
  /**
   * This process has been elected master. If it throws or rejects, the error
   * is reported through `electionError` and a new election is forced (this
   * process sits that one out). A promise it returns must settle within
   * `becomeMasterTimeoutMs`, or the term is given up (see that option); stop
   * the term's work on `term.signal`.
   */
  becomeMaster(term: MasterTerm): void | Promise<void>;
  /**
   * Another process is master (`newMaster` is its `host:port`; `fencingToken`
   * is its term's token, the election file's rev). Called at start
   * when a master exists, and on every new master term, also when this process
   * is already a slave: it doubles as a change-of-master notification.
   */
  becomeSlave(newMaster: string, fencingToken: number): void | Promise<void>;
  /** A non-fatal error in the election (including an involuntary end of a master term). */
  electionError?(err: Error): void | Promise<void>;
  /** The election cannot go on and has stopped (for example, access refused). */
  electionFatal?(err: Error): void | Promise<void>;
}

/** Minimal logger; Nest's `Logger` fits. */
export interface ElectionLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug?(message: string): void;
  /**
   * A line for the operator that `log` may not show (a wait that would look
   * like a hang). Default: `log`.
   */
  info?(message: string): void;
}

/**
 * Timing and behaviour of an election client. Every duration is in
 * milliseconds, positive and at most 2^31−1 (what a timer can hold).
 */
export interface MasterElectionOptions {
  /**
   * How long others wait, on their own clock, without seeing a renewal before
   * they replace the master. Default 10000. Must exceed `renewDeadlineMs`.
   */
  leaseMs?: number;
  /**
   * A master steps down when no renewal completed within this long of the
   * start of its last successful renewal. Default `min(7000, 70% of
   * leaseMs)` (7000 with the default lease). Must exceed
   * `retryPeriodMs`; `leaseMs - renewDeadlineMs` is the safety margin for
   * clock-rate drift and for leader-only work to stop.
   */
  renewDeadlineMs?: number;
  /**
   * How often the master renews its lease (and retries). Default
   * `min(2000, renewDeadlineMs / 3.5)` (2000 with the default lease).
   */
  retryPeriodMs?: number;
  /**
   * Upper bound of the random delay before a candidate writes (creating the
   * election file, deposing a dead master), so that many participants do not
   * burst writes at the server. Default: adaptive, four times the measured
   * write round trip, between 20 ms and `retryPeriodMs / 2`.
   */
  electionJitterMs?: number;
  /**
   * A master that never takes a lease (a participant of the Go package, or
   * one that died between creating the election file and taking its lease)
   * is deposed after `leaseMs` by default. Set true to follow such masters
   * forever, as the Go package does (for mixed fleets; see
   * docs/election-protocol.md).
   */
  respectLeaselessMaster?: boolean;
  /**
   * The longest `becomeMaster` may take. A `becomeMaster` whose promise has
   * not settled by then is reported through `electionError` (a
   * `BecomeMasterTimeoutError`), its term's signal aborts and the term
   * is given up (released, so another participant takes over at once);
   * `health()` reports unhealthy and this participant does not take part in
   * the election until that promise settles (and, as after a failed
   * `becomeMaster`, for the rest of `leaseMs` after the bound passed, unless
   * a new term begins meanwhile). A `becomeMaster` that settles in time
   * changes nothing. Default `renewDeadlineMs`.
   */
  becomeMasterTimeoutMs?: number;
  /**
   * Called the moment a master term ends (its signal has just aborted). The
   * lease is released, letting another process take over at once, only after
   * the returned promise settles, or after `leaseMs - renewDeadlineMs` at the
   * latest (when others could take over anyway). Use it to stop the term's
   * work (a child process, a consumer) before anyone else starts it.
   */
  beforeRelease?: (term: MasterTerm) => void | Promise<void>;
  /** Where the election logs. Default: silent except errors to `console.error`. */
  logger?: ElectionLogger;
  /** The monotonic clock and timers (inject a manual clock in tests). Default {@link systemClock}. */
  clock?: Clock;
}

/** A role as the election sees it. */
export type ElectionRole = 'master' | 'slave' | 'candidate' | 'stopped';

/** A snapshot of the election as seen by this process. */
export interface ElectionState {
  /** `master`: this process; `slave`: another process is master (or none is known, for passive clients); `candidate`: no master, this process takes part in electing one. */
  readonly role: ElectionRole;
  /** The current master's `host:port`, or `''` when none is known. */
  readonly master: string;
  /** The current master term's fencing token, or 0 when no master is known. */
  readonly term: number;
}

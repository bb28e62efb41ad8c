/**
 * One jittered exponential backoff for every retry loop of the library
 * (reconnects, resyncs, renewals, Nest's start-up retries): the delay
 * ceiling grows by `multiplier` per attempt up to `maxDelayMs`, and a random
 * part of it (`jitter`, 0 to 1) is taken off so that many processes that
 * failed together do not retry together.
 */

/** A fully resolved backoff policy. */
export interface BackoffPolicy {
  /** The ceiling of the first delay (attempt 0). */
  readonly initialDelayMs: number;
  /** The largest ceiling. */
  readonly maxDelayMs: number;
  /** Growth of the ceiling per attempt (at least 1). */
  readonly multiplier: number;
  /** The share of the ceiling that is random: 0 (none) to 1 (full jitter: 0 to ceiling). */
  readonly jitter: number;
}

/** Delay before the `attempt`-th consecutive retry (from 0): between `(1 - jitter)` times the ceiling and the ceiling. */
export function backoffDelay(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** attempt);
  return ceiling * (1 - policy.jitter * random());
}

/** A delay drawn in `[from * ms, to * ms)`: the jitter of one periodic retry. */
export function jittered(
  ms: number,
  from: number,
  to: number,
  random: () => number = Math.random,
): number {
  return ms * (from + (to - from) * random());
}

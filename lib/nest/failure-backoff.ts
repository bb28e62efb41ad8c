/** One failed master term, as {@link FailureBackoff.fail} counts it. */
export interface BackoffStep {
  /** Failed terms in a row, this one included. */
  readonly count: number;
  /** Whether the failure is the same as the one before it (same handlers, same message). */
  readonly repeated: boolean;
  /** How long to sit out before taking part again, jitter included. */
  readonly delayMs: number;
}

/**
 * Exponential, capped, jittered backoff between master terms whose
 * `@OnBecomeMaster` handlers failed: after the n-th failure in a row this
 * process sits out `min(max, initial * 2^(n-1))`, times a random factor in
 * [0.5, 1], so that replicas whose handlers keep failing neither flap the
 * election nor fall into step. A term whose handlers complete resets it, and
 * so does a quiet spell of twice the cap.
 */
export class FailureBackoff {
  private count = 0;
  private last: { readonly key: string; readonly at: number } | undefined;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts a failed term (`key` identifies the failure, to tell repeats) and returns the step. */
  fail(key: string): BackoffStep {
    const at = this.now();
    if (this.last && at - this.last.at > 2 * this.maxMs) this.count = 0;
    const repeated = this.count > 0 && this.last?.key === key;
    this.count += 1;
    this.last = { key, at };
    const base = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.count - 1, 30));
    return {
      count: this.count,
      repeated,
      delayMs: Math.max(1, Math.round(base * (0.5 + this.random() / 2))),
    };
  }

  /** A term's handlers completed: the next failure starts over. */
  succeed(): void {
    this.count = 0;
    this.last = undefined;
  }
}

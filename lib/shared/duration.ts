/**
 * One check for a duration option: a positive, finite number of
 * milliseconds that a timer can hold. Each layer wraps the message in its
 * own typed error (naming the option).
 */

/** The longest delay a timer can hold (about 24.8 days); longer ones would fire at once. */
export const MAX_DURATION_MS = 0x7fffffff;

/**
 * Why `value` is not a usable duration, or `undefined` when it is one.
 * `allowZero` admits 0 (for options where 0 means "none").
 */
export function durationProblem(value: unknown, allowZero = false): string | undefined {
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < 0 ||
    (value === 0 && !allowZero)
  ) {
    const got = typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? typeof value);
    return `must be a ${allowZero ? 'non-negative' : 'positive'}, finite number of milliseconds (got ${got})`;
  }
  if (value > MAX_DURATION_MS) {
    return `must be at most ${MAX_DURATION_MS} ms, the longest a timer can wait (got ${value})`;
  }
  return undefined;
}

/** Reconnect backoff policy: exponential growth, capped, with jitter. */
import { DoozerArgumentError } from './errors.js';
import type { BackoffPolicy } from '../shared/backoff.js';
import type { DoozerReconnectOptions } from './types.js';

export type { BackoffPolicy } from '../shared/backoff.js';
export { backoffDelay } from '../shared/backoff.js';

/** The default policy: 100 ms, x2, at most 5000 ms, full jitter. */
export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({
  initialDelayMs: 100,
  maxDelayMs: 5000,
  multiplier: 2,
  jitter: 1,
});

function check(name: string, value: number, ok: boolean): number {
  if (!ok || !Number.isFinite(value)) {
    throw new DoozerArgumentError(`reconnect.${name} is invalid: ${String(value)}`);
  }
  return value;
}

/** Resolves the `reconnect` option; `undefined` means "do not reconnect". */
export function resolveBackoff(
  option: boolean | DoozerReconnectOptions | undefined,
): BackoffPolicy | undefined {
  if (option === false) return undefined;
  if (option === undefined || option === true) return DEFAULT_BACKOFF;
  const p = { ...DEFAULT_BACKOFF, ...option };
  return {
    initialDelayMs: check('initialDelayMs', p.initialDelayMs, p.initialDelayMs >= 0),
    maxDelayMs: check('maxDelayMs', p.maxDelayMs, p.maxDelayMs >= p.initialDelayMs),
    multiplier: check('multiplier', p.multiplier, p.multiplier >= 1),
    jitter: check('jitter', p.jitter, p.jitter >= 0 && p.jitter <= 1),
  };
}

import { setTimeout as sleep } from 'node:timers/promises';
import { Observable, filter, firstValueFrom, from, merge, throwError, timeout } from 'rxjs';

/** A demo step that did not go as it should. */
export class DemoError extends Error {
  override readonly name = 'DemoError';
}

/** An observable that fails with the signal's reason once it aborts. */
function aborted(signal: AbortSignal): Observable<never> {
  return new Observable<never>((subscriber) => {
    const fail = (): void => subscriber.error(signal.reason);
    if (signal.aborted) {
      fail();
      return undefined;
    }
    signal.addEventListener('abort', fail, { once: true });
    return () => signal.removeEventListener('abort', fail);
  });
}

/**
 * Resolves with the first value of `source` that matches `predicate`.
 * Rejects after `timeoutMs` (naming `what`), when `signal` aborts (with its
 * reason), or when `source` completes first.
 */
export function waitFor<T>(
  source: Observable<T>,
  predicate: (value: T) => boolean,
  what: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<T> {
  return firstValueFrom(
    merge(source.pipe(filter(predicate)), aborted(signal)).pipe(
      timeout({
        first: timeoutMs,
        with: () =>
          throwError(() => new DemoError(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      }),
    ),
  ).catch((err: unknown) => {
    if (err instanceof Error && err.name === 'EmptyError') {
      throw new DemoError(`gave up waiting for ${what}: the source ended`);
    }
    throw err;
  });
}

/**
 * Calls `check` until it returns a value (not `undefined`), `intervalMs`
 * apart; for state that can only be polled (an HTTP endpoint). Rejects like
 * {@link waitFor}; `what` may be a function, to describe the last state seen.
 */
export async function pollFor<T>(
  check: () => Promise<T | undefined>,
  what: string | (() => string),
  timeoutMs: number,
  signal: AbortSignal,
  intervalMs = 50,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    signal.throwIfAborted();
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) {
      const described = typeof what === 'string' ? what : what();
      throw new DemoError(`timed out after ${timeoutMs} ms waiting for ${described}`);
    }
    await sleep(intervalMs, undefined, { signal }).catch(() => signal.throwIfAborted());
  }
}

/** Resolves like `promise`, but rejects after `timeoutMs` or when `signal` aborts (see {@link waitFor}). */
export function within<T>(
  promise: Promise<T>,
  what: string,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<T> {
  return waitFor(from(promise), () => true, what, timeoutMs, signal);
}

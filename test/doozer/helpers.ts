/** Shared helpers of the client tests: cleanup registry, event waits, log capture. */
import { afterEach } from 'vitest';
import { firstValueFrom, filter, skip, timeout } from 'rxjs';
import type { DoozerClient, DoozerConnectionEvent } from '../../lib/doozer/index.js';
import { WAIT_MS } from './fixture.js';

const cleanups: (() => unknown)[] = [];

/** Registers `fn` to run after the current test (in reverse order). */
export function defer(fn: () => unknown): void {
  cleanups.push(fn);
}

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** Registers a client for closing after the test, and returns it. */
export function track<T extends { close(): Promise<unknown> }>(thing: T): T {
  defer(() => thing.close());
  return thing;
}

/** The next connection event of `type`: the latest one replayed unless `skipLatest`. */
export function nextEvent<K extends DoozerConnectionEvent['type']>(
  client: DoozerClient,
  type: K,
  skipLatest = false,
): Promise<Extract<DoozerConnectionEvent, { type: K }>> {
  return firstValueFrom(
    client.state$.pipe(
      skip(skipLatest ? 1 : 0),
      filter((e): e is Extract<DoozerConnectionEvent, { type: K }> => e.type === type),
      timeout(WAIT_MS),
    ),
  );
}

/** A logger that records every message. */
export function captureLogger(): {
  lines: string[];
  logger: Required<import('../../lib/doozer/index.js').DoozerLogger>;
} {
  const lines: string[] = [];
  return {
    lines,
    logger: {
      debug: (m) => lines.push(`debug ${m}`),
      warn: (m) => lines.push(`warn ${m}`),
      error: (m) => lines.push(`error ${m}`),
    },
  };
}

/** Settles `p` and returns the rejection reason (fails if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject');
}

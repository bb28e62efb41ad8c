/** Waiting on a lock's watch (`ElectionLock.watch`) in tests: events, never sleeps. */
import type { LockEvent } from '../../lib/election/port.js';

/** The watch's next event, or a rejection after `ms` (its timer always cleared). */
export async function nextWatchEvent(
  iter: AsyncIterator<LockEvent>,
  ms = 10_000,
): Promise<IteratorResult<LockEvent>> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      iter.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no watch event within ${ms} ms`)),
          Math.max(1, ms),
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The first watch event satisfying `pred` (skipping others), within `ms` in all. */
export async function untilWatchEvent(
  iter: AsyncIterator<LockEvent>,
  pred: (e: LockEvent) => boolean,
  ms = 30_000,
): Promise<LockEvent> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await nextWatchEvent(iter, deadline - Date.now());
    if (r.done) throw new Error('watch ended');
    if (pred(r.value)) return r.value;
  }
}

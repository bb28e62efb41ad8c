/**
 * Following one election: notifications from the store's LISTEN connection,
 * a read every retry period (a safety net for a lost notification), and a
 * read when the lease of the record in view runs out by the database's clock
 * (so that the store's expiry is reported without waiting for the next
 * period). Views are ordered by the row's version, which grows with every
 * write in commit order; a stale notification is skipped, several changes
 * are coalesced into the latest.
 */
import type { LockEvent } from '../../election/port.js';
import type { Subscriber } from './listener.js';
import type { RowView } from './sql.js';
import type { View } from './view.js';

/** What a watch needs of its lock. */
export interface WatchSource {
  readonly name: string;
  readonly retryPeriodMs: number;
  /** Subscribes to the election's notifications once LISTEN is in place. */
  subscribe(sub: Subscriber): Promise<() => void>;
  read(): Promise<View>;
  toView(row: RowView): View;
}

/** Where the watch starts: the version the caller saw. */
export interface WatchStart {
  readonly inc: string;
  readonly version: string;
  readonly expired: boolean;
}

/** Margin after a lease's end before the read that sees it expired. */
const EXPIRY_MARGIN_MS = 5;

export async function* follow(
  src: WatchSource,
  from: WatchStart,
  signal: AbortSignal,
  closed: AbortSignal,
): AsyncGenerator<LockEvent> {
  let seenV = BigInt(from.version);
  let seenX = from.expired;
  let lastReadV = -1n;
  // In one object: the callbacks below change these while the loop waits.
  const st: { pending: View | null; reset: string | null; failure: { err: unknown } | null } = {
    pending: null,
    reset: null,
    failure: null,
  };
  let wake: (() => void) | null = null;
  let done = false;
  const poke = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const stopped = (): boolean => done || signal.aborted || closed.aborted;
  let expiryTimer: NodeJS.Timeout | undefined;
  let periodic: NodeJS.Timeout | undefined;

  const offer = (view: View, fromRead: boolean): void => {
    if (stopped()) return;
    if (view.inc !== from.inc) {
      st.reset ??= 'the election table was dropped and made again';
      return poke();
    }
    if (fromRead) {
      // Reads run one at a time, each after the last: a version going back means the state was replaced.
      if (view.v < lastReadV) {
        st.reset ??= 'the election row went back (deleted, or the database restored)';
        return poke();
      }
      lastReadV = view.v;
    }
    const newer = view.v > seenV || (view.v === seenV && view.expired && !seenX);
    if (!newer) return;
    seenV = view.v;
    seenX = view.expired;
    st.pending = view;
    clearTimeout(expiryTimer);
    const r = view.snapshot.record;
    if (r && r.state !== 'released') {
      expiryTimer = setTimeout(read, view.remainingMs + EXPIRY_MARGIN_MS);
    }
    poke();
  };

  let reading = false;
  let again = false;
  function read(): void {
    if (stopped()) return;
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    src
      .read()
      .then(
        (view) => offer(view, true),
        (err: unknown) => {
          if (!stopped()) st.failure ??= { err };
          poke();
        },
      )
      .finally(() => {
        reading = false;
        if (again) {
          again = false;
          read();
        }
      });
  }

  const onAbort = (): void => poke();
  signal.addEventListener('abort', onAbort);
  closed.addEventListener('abort', onAbort);
  let unsubscribe: (() => void) | undefined;
  try {
    unsubscribe = await src.subscribe({
      name: src.name,
      onRow: (row) => offer(src.toView(row), false),
      onReset: (reason) => {
        st.reset ??= reason;
        poke();
      },
    });
    // LISTEN is in place: anything committed from now on is heard; this read covers what came before.
    read();
    periodic = setInterval(read, src.retryPeriodMs);
    while (!stopped()) {
      if (st.failure) throw st.failure.err;
      if (st.reset !== null) {
        yield { kind: 'reset', reason: st.reset };
        return;
      }
      const view = st.pending;
      if (view) {
        st.pending = null;
        yield { kind: 'change', snapshot: view.snapshot };
        continue;
      }
      await new Promise<void>((r) => (wake = r));
    }
  } finally {
    done = true;
    clearTimeout(expiryTimer);
    clearInterval(periodic);
    unsubscribe?.();
    signal.removeEventListener('abort', onAbort);
    closed.removeEventListener('abort', onAbort);
  }
}

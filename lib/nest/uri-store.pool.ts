import type { ClosableElectionStore } from '../backends/store-uri.js';

interface Entry {
  store: ClosableElectionStore | undefined;
  /** The opening in progress, shared by everyone waiting for this URI. */
  attempt: Promise<ClosableElectionStore> | undefined;
  /** Callers waiting for the attempt in progress. */
  waiting: number;
  refs: number;
}

const asError = (reason: unknown): Error =>
  reason instanceof Error ? reason : new Error('aborted', { cause: reason });

/**
 * The etcd and PostgreSQL stores of one application opened from a `uri`:
 * one per URI, shared by the registrations that give it, closed when the
 * last of them releases it (the sibling of `DoozerConnectionPool`).
 */
export class UriStorePool {
  private readonly entries = new Map<string, Entry>();

  /** How many stores are open or opening (for tests). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Opens the store of `uri` with `open` (joining an opening in progress for
   * the same URI) or shares the open one, and counts a reference to it.
   * Rejects with `open`'s error, or with `signal`'s reason when it aborts
   * first; a store opened after everyone gave up is closed.
   */
  async acquire(
    uri: string,
    open: () => Promise<ClosableElectionStore>,
    signal?: AbortSignal,
  ): Promise<ClosableElectionStore> {
    signal?.throwIfAborted();
    let entry = this.entries.get(uri);
    if (!entry) {
      entry = { store: undefined, attempt: undefined, waiting: 0, refs: 0 };
      this.entries.set(uri, entry);
    }
    const e = entry;
    if (e.store) {
      e.refs++;
      return e.store;
    }
    if (!e.attempt) {
      e.attempt = open().finally(() => {
        e.attempt = undefined;
      });
    }
    const attempt = e.attempt;
    e.waiting++;
    let onAbort: (() => void) | undefined;
    try {
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(asError(signal?.reason));
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      const store = await Promise.race([attempt, aborted]);
      e.store ??= store;
      e.refs++;
      return e.store;
    } catch (err) {
      const last = e.waiting === 1 && e.refs === 0 && !e.store;
      if (last) {
        if (this.entries.get(uri) === e) this.entries.delete(uri);
        // Nobody waits any more: close a store that opens after all.
        if (signal?.aborted) {
          void attempt.then(
            (late) => late.close().catch(() => undefined),
            () => undefined,
          );
        }
      }
      throw err;
    } finally {
      e.waiting--;
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Drops a reference taken by {@link acquire}; closes the store when it was the last. */
  async release(store: ClosableElectionStore): Promise<void> {
    for (const [key, entry] of this.entries) {
      if (entry.store !== store) continue;
      entry.refs--;
      if (entry.refs > 0) return;
      this.entries.delete(key);
      await store.close();
      return;
    }
  }

  /** Closes every store still open (a safety net at shutdown). */
  async closeAll(): Promise<void> {
    const stores = [...this.entries.values()].flatMap((e) => (e.store ? [e.store] : []));
    this.entries.clear();
    await Promise.allSettled(stores.map((s) => s.close()));
  }
}

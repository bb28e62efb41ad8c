import { DoozerClient } from '../doozer/index.js';

/** How to open a pooled connection. */
export interface PooledConnectionOptions {
  readonly bootUri?: string;
  readonly connectTimeoutMs?: number;
  readonly logger?: { debug?(m: string): void; warn?(m: string): void; error?(m: string): void };
  /**
   * Gives up waiting when it aborts (rejecting with its reason). The attempt
   * itself, shared by every caller waiting for the same URI, is aborted once
   * all of them have given up.
   */
  readonly signal?: AbortSignal;
}

interface Entry {
  client: DoozerClient | undefined;
  attempt: Promise<DoozerClient> | undefined;
  /** Aborts the attempt in progress. */
  abort: AbortController | undefined;
  /** Callers waiting for the attempt in progress. */
  waiting: number;
  refs: number;
}

const asError = (reason: unknown): Error =>
  reason instanceof Error ? reason : new Error('aborted', { cause: reason });

/** The Doozer URI with its secret shown as `sk=***`, for messages. */
export function redactDoozerUri(uri: string): string {
  return uri.replace(/([?&]sk=)[^&]*/gi, '$1***');
}

/**
 * The Doozer connections of one application: one per URI (and boot URI),
 * shared by the registrations that use it, closed when the last of them
 * releases it.
 */
export class DoozerConnectionPool {
  private readonly entries = new Map<string, Entry>();

  /**
   * Makes one connection attempt (joining one in progress for the same URI)
   * or shares the open connection, and counts a reference to it.
   * Rejects with the client's error when the attempt fails.
   */
  async acquire(uri: string, options: PooledConnectionOptions = {}): Promise<DoozerClient> {
    const { signal } = options;
    signal?.throwIfAborted();
    const key = `${uri}\u0000${options.bootUri ?? ''}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { client: undefined, attempt: undefined, abort: undefined, waiting: 0, refs: 0 };
      this.entries.set(key, entry);
    }
    if (entry.client?.state === 'closed') entry.client = undefined;
    let client = entry.client;
    if (!client) {
      const e = entry;
      if (!e.attempt) {
        const abort = new AbortController();
        e.abort = abort;
        e.attempt = DoozerClient.connect(uri, {
          ...(options.bootUri === undefined ? {} : { bootUri: options.bootUri }),
          ...(options.connectTimeoutMs === undefined
            ? {}
            : { connectTimeoutMs: options.connectTimeoutMs }),
          ...(options.logger ? { logger: options.logger } : {}),
          signal: abort.signal,
        }).finally(() => {
          e.attempt = undefined;
          e.abort = undefined;
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
        client = await Promise.race([attempt, aborted]);
        client = e.client ??= client;
      } catch (err) {
        const last = e.waiting === 1 && e.refs === 0 && !e.client;
        if (last && signal?.aborted) {
          // Nobody waits any more: abort the shared attempt, and close a
          // client that connected in the same moment.
          e.abort?.abort(signal.reason);
          void attempt.then(
            (late) => void late.close(),
            () => undefined,
          );
        }
        if (last && this.entries.get(key) === e) this.entries.delete(key);
        throw err;
      } finally {
        e.waiting--;
        if (onAbort) signal?.removeEventListener('abort', onAbort);
      }
    }
    entry.refs++;
    return client;
  }

  /** Drops a reference taken by {@link acquire}; closes the connection when it was the last. */
  async release(client: DoozerClient): Promise<void> {
    for (const [key, entry] of this.entries) {
      if (entry.client !== client) continue;
      entry.refs--;
      if (entry.refs > 0) return;
      this.entries.delete(key);
      await client.close();
      return;
    }
  }

  /** Closes every connection still open (a safety net at shutdown). */
  async closeAll(): Promise<void> {
    const clients = [...this.entries.values()].flatMap((e) => (e.client ? [e.client] : []));
    this.entries.clear();
    await Promise.allSettled(clients.map((c) => c.close()));
  }
}

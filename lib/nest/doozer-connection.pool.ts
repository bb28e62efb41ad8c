import { DoozerClient } from '../doozer/index.js';

/** How to open a pooled connection. */
export interface PooledConnectionOptions {
  readonly bootUri?: string;
  readonly connectTimeoutMs?: number;
  readonly logger?: { debug?(m: string): void; warn?(m: string): void; error?(m: string): void };
}

interface Entry {
  client: DoozerClient | undefined;
  attempt: Promise<DoozerClient> | undefined;
  refs: number;
}

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
    const key = `${uri}\u0000${options.bootUri ?? ''}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { client: undefined, attempt: undefined, refs: 0 };
      this.entries.set(key, entry);
    }
    if (entry.client?.state === 'closed') entry.client = undefined;
    let client = entry.client;
    if (!client) {
      const e = entry;
      const attempt = (e.attempt ??= DoozerClient.connect(uri, {
        ...(options.bootUri === undefined ? {} : { bootUri: options.bootUri }),
        ...(options.connectTimeoutMs === undefined
          ? {}
          : { connectTimeoutMs: options.connectTimeoutMs }),
        ...(options.logger ? { logger: options.logger } : {}),
      }).finally(() => (e.attempt = undefined)));
      try {
        client = e.client ??= await attempt;
      } catch (err) {
        if (e.refs === 0 && !e.client && e.attempt === undefined && this.entries.get(key) === e) {
          this.entries.delete(key);
        }
        throw err;
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

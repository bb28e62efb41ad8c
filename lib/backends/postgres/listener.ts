/**
 * The store's one LISTEN connection, shared by every watch of its locks.
 *
 * It is taken from the pool on the first watch and held; notifications are
 * parsed and handed to the subscribers of their election. When the
 * connection fails (an error, its end, a failed health check) every
 * subscriber hears `reset` and is dropped: the port's reset event. The next
 * watch connects again.
 */
import type { ElectionLogger } from '../../election/types.js';
import type { PgPoolClient, PostgresPool } from './driver.js';
import { PostgresStoreError, toStoreError } from './errors.js';
import { quoteIdent } from './options.js';
import type { RowView } from './sql.js';

/** One watch's ears. */
export interface Subscriber {
  readonly name: string;
  onRow(row: RowView): void;
  onReset(reason: string): void;
}

export class Listener {
  private client: PgPoolClient | null = null;
  private connecting: Promise<PgPoolClient> | null = null;
  private readonly subscribers = new Set<Subscriber>();
  private ping: NodeJS.Timeout | undefined;
  private pinging = false;
  private closed = false;
  /** Health check period of the connection while anyone listens (the smallest retry period of the store's locks). */
  pingMs = 5_000;

  constructor(
    private readonly pool: PostgresPool,
    private readonly channel: string,
    private readonly applicationName: string,
    private readonly secrets: readonly string[],
    private readonly logger: () => ElectionLogger | undefined,
  ) {}

  get connected(): boolean {
    return this.client !== null;
  }

  /** How many watches listen now. */
  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /**
   * Subscribes once the connection is listening (connecting if needed); a
   * notification committed after this resolves reaches `sub`. Throws a
   * transient error if the connection cannot be made within `timeoutMs`.
   */
  async subscribe(sub: Subscriber, timeoutMs: number): Promise<() => void> {
    if (this.closed) throw new PostgresStoreError('fatal', 'postgres: the store is closed');
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.connect(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new PostgresStoreError(
                  'transient',
                  `postgres: LISTEN connection not ready within ${timeoutMs} ms`,
                ),
              ),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    this.subscribers.add(sub);
    this.armPing();
    return () => {
      this.subscribers.delete(sub);
    };
  }

  /** The backend pid of the LISTEN connection, for tests (`pg_terminate_backend`). */
  async backendPid(): Promise<number | null> {
    const c = this.client;
    if (!c) return null;
    const r = await c.query('SELECT pg_backend_pid() AS pid');
    return Number(r.rows[0]?.pid);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.connecting?.catch(() => {});
    await this.drop('the store closed');
  }

  private connect(): Promise<PgPoolClient> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.open().finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async open(): Promise<PgPoolClient> {
    let client: PgPoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw toStoreError(err, 'LISTEN connect', this.secrets);
    }
    // Errors of a held connection come as events; without a handler they would crash the app.
    client.on('error', (err) =>
      this.lost(client, toStoreError(err, 'LISTEN connection', this.secrets).message),
    );
    client.on('end', () => this.lost(client, 'LISTEN connection ended'));
    client.on('notification', (msg) => {
      if (msg.channel === this.channel && msg.payload) this.dispatch(msg.payload);
    });
    try {
      // A bound parameter: the name may hold any printable character, a quote included.
      await client.query({
        text: "SELECT set_config('application_name', $1, false)",
        values: [`${this.applicationName} (listen)`],
      });
      await client.query(`LISTEN ${quoteIdent(this.channel)}`);
    } catch (err) {
      client.removeAllListeners();
      client.on('error', () => {});
      client.release(true);
      throw toStoreError(err, 'LISTEN', this.secrets);
    }
    if (this.closed) {
      client.removeAllListeners();
      client.on('error', () => {});
      client.release(true);
      throw new PostgresStoreError('fatal', 'postgres: the store is closed');
    }
    this.client = client;
    return client;
  }

  private dispatch(payload: string): void {
    let row: RowView;
    try {
      row = JSON.parse(payload) as RowView;
    } catch {
      return; // not ours: the periodic read covers anything missed
    }
    if (typeof row?.name !== 'string') return;
    for (const s of [...this.subscribers]) if (s.name === row.name) s.onRow(row);
  }

  private lost(client: PgPoolClient, reason: string): void {
    if (this.client !== client) return;
    this.logger()?.warn(`postgres: ${reason}; watches reset`);
    void this.drop(reason);
  }

  /** Gives the connection up (destroyed: a listening connection never goes back into a pool) and resets every subscriber. */
  private drop(reason: string): Promise<void> {
    clearTimeout(this.ping);
    this.ping = undefined;
    const c = this.client;
    this.client = null;
    let ended = Promise.resolve();
    if (c) {
      c.removeAllListeners();
      c.on('error', () => {});
      // Resolves when the connection has closed (bounded: a dead socket may never say so).
      ended = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2_000);
        c.on('end', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      c.release(true);
    }
    const subs = [...this.subscribers];
    this.subscribers.clear();
    for (const s of subs) s.onReset(reason);
    return ended;
  }

  private armPing(): void {
    if (this.ping || this.closed) return;
    this.ping = setTimeout(() => {
      this.ping = undefined;
      void this.check();
    }, this.pingMs);
  }

  /** A `SELECT 1` on the LISTEN connection: a connection that hangs or fails is dropped. */
  private async check(): Promise<void> {
    const c = this.client;
    if (!c || this.pinging) return;
    if (this.subscribers.size === 0) return;
    this.pinging = true;
    try {
      await c.query({ text: 'SELECT 1', query_timeout: Math.max(this.pingMs, 1_000) });
    } catch (err) {
      if (this.client === c)
        this.lost(c, toStoreError(err, 'LISTEN health check', this.secrets).message);
    } finally {
      this.pinging = false;
    }
    if (this.client === c && this.subscribers.size > 0) this.armPing();
  }
}

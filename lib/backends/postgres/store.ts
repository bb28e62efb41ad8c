/**
 * The PostgreSQL election store: one pool (the application's, or one made
 * from a connection string), one LISTEN connection, and the election table;
 * shared by every election of a process.
 */
import type {
  ElectionLock,
  ElectionStore,
  LockCallOptions,
  LockRequest,
} from '../../election/port.js';
import type { ElectionLogger } from '../../election/types.js';
import { loadPg, type OwnPool, type PgResult, type PostgresPool } from './driver.js';
import { PostgresSchemaMissingError, PostgresStoreError, toStoreError } from './errors.js';
import { Listener } from './listener.js';
import { PostgresLock } from './lock.js';
import {
  checkLockRequest,
  resolvePostgresOptions,
  type PostgresStoreOptions,
  type ResolvedPostgresOptions,
} from './options.js';
import { ElectionSql } from './sql.js';

/**
 * Opens a PostgreSQL store. Options are checked first (an
 * `ElectionConfigError` naming the option); with a connection string the
 * `pg` driver is loaded (a `PostgresDriverMissingError` when it is not
 * installed). Nothing is sent to the server until the first `openLock()`.
 */
export async function createPostgresStore(
  options: PostgresStoreOptions,
): Promise<PostgresElectionStore> {
  const resolved = resolvePostgresOptions(options);
  if (resolved.pool) return new PostgresElectionStore(resolved, resolved.pool, false);
  const pg = await loadPg();
  const pool = new pg.Pool({
    connectionString: resolved.connectionString,
    // One more than poolSize: the LISTEN connection is held for the store's lifetime.
    max: resolved.poolSize + 1,
    application_name: resolved.applicationName,
    connectionTimeoutMillis: resolved.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
  });
  const store = new PostgresElectionStore(resolved, pool, true);
  // An idle connection that fails is reported here; without a handler it would crash the app.
  pool.on('error', (err) => store.lostConnection(err));
  return store;
}

/** SQL for teams that run their own migrations (the table the store would create). */
export function postgresSchemaSql(options: { schema?: string; table?: string } = {}): string {
  const o = resolvePostgresOptions({ ...options, pool: { query: noop, connect: noop } });
  return `${new ElectionSql(o.schema, o.table).ddl().join(';\n\n')};\n`;
}
const noop = (): never => {
  throw new Error('unreachable');
};

/** Counters of a {@link PostgresElectionStore}'s traffic. */
export interface PostgresStoreStats {
  reads: number;
  writes: number;
}

/** The store. Make it with {@link createPostgresStore}; `close()` it when done. */
export class PostgresElectionStore implements ElectionStore {
  readonly backend = 'postgres';
  /** Queries answered so far (for tests and benchmarks): reads, and writes (create, renew, release, depose). */
  readonly stats: PostgresStoreStats = { reads: 0, writes: 0 };
  /** @internal */
  readonly sql: ElectionSql;
  /** @internal */
  readonly listener: Listener;
  private schemaReady: Promise<void> | null = null;
  private ok = true;
  private lastProblem = '';
  private closed = false;
  private logger: ElectionLogger | undefined;

  /** @internal Use {@link createPostgresStore}. */
  constructor(
    private readonly options: ResolvedPostgresOptions,
    private readonly pool: PostgresPool,
    private readonly ownsPool: boolean,
  ) {
    this.sql = new ElectionSql(options.schema, options.table);
    this.listener = new Listener(
      pool,
      this.sql.channel,
      options.applicationName,
      options.secrets,
      () => this.logger,
    );
  }

  async openLock(request: LockRequest): Promise<ElectionLock> {
    checkLockRequest(request);
    if (this.closed) throw new PostgresStoreError('fatal', 'postgres: the store is closed');
    this.logger ??= request.logger;
    await this.ensureSchema();
    this.listener.pingMs = Math.min(
      this.listener.pingMs,
      Math.max(request.timing.retryPeriodMs, 100),
    );
    return new PostgresLock(this, request);
  }

  /**
   * Ends the LISTEN connection and, if the store made it, the pool. A pool
   * given by the application is left open. Close the store's locks first.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.listener.close();
    if (this.ownsPool) await (this.pool as OwnPool).end();
  }

  toString(): string {
    return `postgres store ${this.sql.table} at ${this.options.where}`;
  }

  /** @internal Whether the last query reached the server. */
  get connected(): { connected: boolean; detail?: string } {
    return this.ok
      ? { connected: true, detail: this.options.where }
      : { connected: false, detail: this.lastProblem };
  }

  /** @internal One short query on the pool, within `call`'s timeout and signal. */
  async run(
    text: string,
    values: unknown[],
    call: LockCallOptions,
    what: string,
  ): Promise<PgResult> {
    if (this.closed)
      throw new PostgresStoreError('fatal', `postgres: ${what}: the store is closed`);
    const timeoutMs = Math.max(1, Math.ceil(call.timeoutMs));
    const query = this.pool.query({ text, values, query_timeout: timeoutMs });
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      const result = await Promise.race([
        query,
        new Promise<never>((_, reject) => {
          const fail = (why: string): void =>
            reject(new PostgresStoreError('transient', `postgres: ${what} ${why}`));
          timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
          if (call.signal) {
            onAbort = () => fail('was aborted');
            if (call.signal.aborted) onAbort();
            else call.signal.addEventListener('abort', onAbort, { once: true });
          }
        }),
      ]);
      this.ok = true;
      if (what === 'read') this.stats.reads++;
      else if (what !== 'schema check') this.stats.writes++;
      return result;
    } catch (err) {
      query.catch(() => {}); // it may still settle after the race is lost
      const e = toStoreError(err, what, this.options.secrets);
      this.ok = false;
      this.lastProblem = e.message;
      throw e;
    } finally {
      clearTimeout(timer);
      if (onAbort) call.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** @internal */
  get closedStore(): boolean {
    return this.closed;
  }

  /** @internal */
  get timeoutMs(): number {
    return this.options.connectTimeoutMs;
  }

  /** @internal An idle connection of the store's own pool failed. */
  lostConnection(err: Error): void {
    this.ok = false;
    this.lastProblem = toStoreError(err, 'idle connection', this.options.secrets).message;
    this.logger?.warn(`postgres: ${this.lastProblem}`);
  }

  /** Checks the table once (and creates what is missing, unless `createTable` is false). */
  private ensureSchema(): Promise<void> {
    this.schemaReady ??= this.checkSchema().catch((err: unknown) => {
      this.schemaReady = null;
      throw err;
    });
    return this.schemaReady;
  }

  private async checkSchema(): Promise<void> {
    const call = { timeoutMs: this.options.connectTimeoutMs };
    const { sql } = this;
    const r = await this.run(
      sql.exists,
      [sql.schema, sql.table, sql.sequence],
      call,
      'schema check',
    );
    const row = r.rows[0] ?? {};
    const missing = [
      row.schema_ok ? null : `schema ${JSON.stringify(sql.schema)}`,
      row.table_ok ? null : `table ${sql.table}`,
      row.sequence_ok ? null : `sequence ${sql.sequence}`,
    ].filter((m): m is string => m !== null);
    if (missing.length === 0) return;
    if (!this.options.createTable) {
      throw new PostgresSchemaMissingError(
        missing[0]!,
        `postgres: ${missing.join(', ')} missing and createTable is false: create them with the SQL of postgresSchemaSql() (docs/backends/postgres.md)`,
      );
    }
    let client;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw toStoreError(err, 'schema creation', this.options.secrets);
    }
    try {
      await client.query('BEGIN');
      // Serialises concurrent first uses: CREATE … IF NOT EXISTS alone can race in the catalogs.
      await client.query({
        text: 'SELECT pg_advisory_xact_lock(hashtext($1))',
        values: [sql.table],
      });
      for (const stmt of sql.ddl()) {
        if (stmt.startsWith('CREATE SCHEMA') && row.schema_ok) continue;
        await client.query(stmt);
      }
      await client.query('COMMIT');
      this.logger?.log(`postgres: created ${missing.join(', ')}`);
      client.release();
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      client.release(true);
      throw toStoreError(err, `creating ${missing.join(', ')}`, this.options.secrets);
    }
  }
}

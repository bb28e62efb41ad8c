/**
 * The few parts of node-postgres (`pg`) this backend uses, as structural
 * types (so that the package's type declarations do not depend on `@types/pg`),
 * and the lazy loading of the optional driver.
 */
import { PostgresDriverMissingError } from './errors.js';

/** A query's result, as `pg` returns it. */
export interface PgResult {
  readonly rows: Record<string, unknown>[];
  readonly rowCount: number | null;
}

/** A query as `pg` takes it. */
export interface PgQuery {
  readonly text: string;
  readonly values?: unknown[];
  /** Client-side read timeout of this query (pg ≥ 8.8). */
  readonly query_timeout?: number;
}

/** A connection taken from a pool (`pg.PoolClient`). */
export interface PgPoolClient {
  query(query: PgQuery | string): Promise<PgResult>;
  /** Returns the connection; `true` (or an error) destroys it instead. */
  release(destroy?: boolean | Error): void;
  on(event: 'notification', fn: (msg: { channel: string; payload?: string }) => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  on(event: 'end', fn: () => void): unknown;
  removeAllListeners(event?: string): unknown;
}

/**
 * What this backend needs of a connection pool: a `pg.Pool` satisfies it.
 * Pass the pool your application already has; the store never ends it.
 */
export interface PostgresPool {
  query(query: PgQuery): Promise<PgResult>;
  connect(): Promise<PgPoolClient>;
}

/** A pool this store made itself (from a connection string) and so may end. */
export interface OwnPool extends PostgresPool {
  end(): Promise<void>;
  on(event: 'error', fn: (err: Error) => void): unknown;
}

/** The parts of the `pg` module this backend uses. */
export interface PgModule {
  Pool: new (config: Record<string, unknown>) => OwnPool;
}

/**
 * Loads `specifier` (the `pg` driver) on first use. `await import()` inside a
 * function becomes a `require` in the CommonJS build. A driver that is not
 * installed becomes a {@link PostgresDriverMissingError} naming the package.
 */
export async function loadPg(specifier = 'pg'): Promise<PgModule> {
  let mod: { default?: PgModule } & Partial<PgModule>;
  try {
    // A literal specifier for the real driver, so bundlers and `require` tracers see it.
    mod = (specifier === 'pg' ? await import('pg') : await import(specifier)) as {
      default?: PgModule;
    } & Partial<PgModule>;
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new PostgresDriverMissingError(specifier);
    }
    throw err;
  }
  const pg = mod.Pool ? (mod as PgModule) : mod.default;
  if (!pg?.Pool) throw new PostgresDriverMissingError(specifier);
  return pg;
}

/** Options of the PostgreSQL store, their defaults and checks. */
import { ElectionConfigError } from '../../election/errors.js';
import type { LockRequest } from '../../election/port.js';
import type { PostgresPool } from './driver.js';

/** Options of {@link createPostgresStore}. Give exactly one of `connectionString` and `pool`. */
export interface PostgresStoreOptions {
  /**
   * `postgres://user:password@host:port/database?...`: the store makes its
   * own small pool from it (and ends it on `close()`). The password never
   * appears in logs, errors or `toString()`.
   */
  readonly connectionString?: string;
  /**
   * A `pg.Pool` the application already has. The store runs its short
   * queries on it and takes one of its connections for LISTEN; it never ends
   * the pool.
   */
  readonly pool?: PostgresPool;
  /** Schema of the election table. Default `public`. */
  readonly schema?: string;
  /** Name of the election table (its sequence is `<table>_seq`). Default `master_elections`. */
  readonly table?: string;
  /**
   * Create the schema, table and sequence on first use when missing
   * (default `true`). With `false` the store never runs DDL: a missing
   * table is a fatal {@link PostgresSchemaMissingError}; run the SQL of
   * `postgresSchemaSql()` (docs/backends/postgres.md) in your migrations.
   */
  readonly createTable?: boolean;
  /** Connections for queries in the pool made from `connectionString` (the LISTEN connection is one more). Default 4. */
  readonly poolSize?: number;
  /** `application_name` of the store's connections (own pool; the LISTEN connection always). Default `nestjs-master-election`. */
  readonly applicationName?: string;
  /** Connection timeout of the store's own pool, in milliseconds. Default 10 000. */
  readonly connectTimeoutMs?: number;
}

/** The options after defaults and checks. */
export interface ResolvedPostgresOptions {
  readonly connectionString?: string;
  readonly pool?: PostgresPool;
  readonly schema: string;
  readonly table: string;
  readonly createTable: boolean;
  readonly poolSize: number;
  readonly applicationName: string;
  readonly connectTimeoutMs: number;
  /** Where the store is, without secrets: `postgres://user@host:port/db` or `a pg.Pool`. */
  readonly where: string;
  /** Strings to cut out of any message (the password). */
  readonly secrets: readonly string[];
}

/** A PostgreSQL identifier we accept: letters, digits, `_`, not starting with a digit. */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function identifier(option: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || !IDENTIFIER.test(value) || value.length > max) {
    throw new ElectionConfigError(
      option,
      `${JSON.stringify(value)} is not a valid identifier: use 1 to ${max} letters, digits or _ (not starting with a digit)`,
    );
  }
  return value;
}

/** Quotes an identifier already checked against {@link IDENTIFIER} (quotes doubled anyway). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Parses and redacts a connection string; throws naming the option, never echoing the string. */
function parseConnectionString(value: unknown): { where: string; password: string } {
  if (typeof value !== 'string' || value.length === 0) {
    throw new ElectionConfigError('connectionString', 'must be a non-empty postgres:// URL');
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ElectionConfigError(
      'connectionString',
      'is not a valid URL (expected postgres://user:password@host:port/database)',
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ElectionConfigError(
      'connectionString',
      `has scheme ${JSON.stringify(url.protocol)}; expected postgres: or postgresql:`,
    );
  }
  if (!url.hostname) {
    throw new ElectionConfigError('connectionString', 'names no host');
  }
  let password: string;
  try {
    password = decodeURIComponent(url.password);
  } catch {
    password = url.password;
  }
  const user = url.username ? `${url.username}@` : '';
  const where = `${url.protocol}//${user}${url.host}${url.pathname}`;
  return { where, password };
}

function positiveInt(option: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ElectionConfigError(option, `must be an integer from 1 to ${max}`);
  }
  return value;
}

/** Applies defaults and checks every option (typed errors naming the option). */
export function resolvePostgresOptions(options: PostgresStoreOptions): ResolvedPostgresOptions {
  if (typeof options !== 'object' || options === null) {
    throw new ElectionConfigError('options', 'give { connectionString } or { pool }');
  }
  const hasUrl = options.connectionString !== undefined;
  const hasPool = options.pool !== undefined;
  if (hasUrl === hasPool) {
    throw new ElectionConfigError(
      hasUrl ? 'pool' : 'connectionString',
      'give exactly one of connectionString and pool',
    );
  }
  let where = 'a pg.Pool given by the application';
  let secrets: string[] = [];
  if (hasUrl) {
    const parsed = parseConnectionString(options.connectionString);
    where = parsed.where;
    secrets = [parsed.password, options.connectionString ?? ''].filter((s) => s.length > 0);
  } else {
    const pool = options.pool as Partial<PostgresPool> | null;
    if (typeof pool?.query !== 'function' || typeof pool.connect !== 'function') {
      throw new ElectionConfigError('pool', 'must be a pg.Pool (with query() and connect())');
    }
    // The LISTEN connection is held for good: a pool of one would leave no connection for queries.
    const max = (pool as { options?: { max?: unknown } }).options?.max;
    if (typeof max === 'number' && max < 2) {
      throw new ElectionConfigError(
        'pool',
        `has max ${max}: the store holds one connection for LISTEN and needs at least one more for queries`,
      );
    }
  }
  const applicationName = options.applicationName ?? 'nestjs-master-election';
  if (
    typeof applicationName !== 'string' ||
    applicationName.length > 50 ||
    [...applicationName].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) > 0x7e)
  ) {
    throw new ElectionConfigError(
      'applicationName',
      'must be at most 50 printable ASCII characters',
    );
  }
  if (options.createTable !== undefined && typeof options.createTable !== 'boolean') {
    throw new ElectionConfigError('createTable', 'must be true or false');
  }
  return {
    ...(hasUrl ? { connectionString: options.connectionString } : { pool: options.pool }),
    schema: identifier('schema', options.schema ?? 'public', 63),
    // Leaves room for the sequence's `_seq` suffix within PostgreSQL's 63 bytes.
    table: identifier('table', options.table ?? 'master_elections', 59),
    createTable: options.createTable ?? true,
    poolSize: positiveInt('poolSize', options.poolSize, 4, 100),
    applicationName,
    connectTimeoutMs: positiveInt('connectTimeoutMs', options.connectTimeoutMs, 10_000, 600_000),
    where,
    secrets,
  };
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Checks what the engine asks a lock for, before anything is sent (typed errors naming the field). */
export function checkLockRequest(request: LockRequest): void {
  const { name, address, timing } = request;
  if (typeof name !== 'string' || name.length < 1 || name.length > 256 || CONTROL.test(name)) {
    throw new ElectionConfigError(
      'name',
      `invalid election name ${JSON.stringify(name)}: the postgres store takes 1 to 256 characters without control characters`,
    );
  }
  if (typeof address !== 'string' || address.length > 1024 || CONTROL.test(address)) {
    throw new ElectionConfigError(
      'address',
      'must be at most 1024 characters without control characters',
    );
  }
  for (const key of ['leaseMs', 'retryPeriodMs'] as const) {
    const v: unknown = timing?.[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 2 ** 31) {
      throw new ElectionConfigError(key, 'must be a positive number of milliseconds up to 2^31');
    }
  }
}

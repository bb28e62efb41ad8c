/** Errors of the PostgreSQL backend, and how driver errors map to them. */
import { ElectionConfigError, ElectionError, LockArgumentError } from '../../election/errors.js';
import type { LockErrorKind } from '../../election/port.js';

/**
 * A failure of the PostgreSQL store. `kind` says whether the engine should
 * retry (`transient`: a lost connection, a timeout, a server shutting down)
 * or stop (`fatal`: access refused, a missing table that may not be
 * created). `code` is PostgreSQL's SQLSTATE or Node's error code, when known.
 * The message never holds a password or a connection string.
 */
export class PostgresStoreError extends ElectionError {
  override name = 'PostgresStoreError';
  constructor(
    readonly kind: LockErrorKind,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** The `pg` driver (an optional peer dependency) is not installed. */
export class PostgresDriverMissingError extends PostgresStoreError {
  override name = 'PostgresDriverMissingError';
  constructor(readonly packageName: string) {
    super(
      'fatal',
      `the PostgreSQL backend needs the "${packageName}" package: npm install ${packageName}`,
      'MODULE_NOT_FOUND',
    );
  }
}

/**
 * The election table (or its schema or sequence) does not exist and the store
 * may not create it (`createTable: false`). `object` names what is missing.
 */
export class PostgresSchemaMissingError extends PostgresStoreError {
  override name = 'PostgresSchemaMissingError';
  constructor(
    readonly object: string,
    message: string,
  ) {
    super('fatal', message, '42P01');
  }
}

/** SQLSTATEs after which retrying cannot help. */
const FATAL_SQLSTATES = new Map<string, string>([
  ['28P01', 'wrong password'],
  ['28000', 'access refused'],
  ['3D000', 'the database does not exist'],
  ['3F000', 'the schema does not exist'],
  ['42P01', 'the table does not exist'],
  ['42501', 'permission denied'],
  ['42703', 'the table lacks a column this library needs (see docs/backends/postgres.md)'],
]);

/** Node's error codes of a connection that could not be made (a bad host name is fatal). */
const FATAL_NODE_CODES = new Set(['ENOTFOUND', 'EAI_FAIL']);

/**
 * Maps anything the driver threw to a {@link PostgresStoreError}: a known
 * fatal SQLSTATE is fatal, everything else (connection loss, shutdown,
 * serialization failure, timeout) is transient. `secrets` are cut out of the
 * message, in case a driver ever echoes one.
 */
export function toStoreError(err: unknown, what: string, secrets: readonly string[] = []): Error {
  if (
    err instanceof PostgresStoreError ||
    err instanceof LockArgumentError ||
    err instanceof ElectionConfigError
  ) {
    return err;
  }
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  let detail = typeof e?.message === 'string' && e.message ? e.message : String(err);
  for (const s of secrets) if (s) detail = detail.split(s).join('***');
  const fatal = code !== undefined && (FATAL_SQLSTATES.has(code) || FATAL_NODE_CODES.has(code));
  const hint = code !== undefined && FATAL_SQLSTATES.get(code);
  return new PostgresStoreError(
    fatal ? 'fatal' : 'transient',
    `postgres: ${what} failed${code ? ` (${code}${hint ? `: ${hint}` : ''})` : ''}: ${detail}`,
    code,
  );
}

/** How the engine should treat an error of this backend. */
export function classifyError(err: unknown): LockErrorKind {
  if (err instanceof PostgresStoreError) return err.kind;
  if (err instanceof LockArgumentError || err instanceof ElectionConfigError) return 'fatal';
  return 'transient';
}

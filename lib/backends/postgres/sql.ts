/**
 * Every SQL statement of the PostgreSQL backend, for one election table.
 * Identifiers are checked (options.ts) and quoted; every value is a bound
 * parameter. Each write is one statement: a compare-and-set `INSERT … ON
 * CONFLICT … WHERE` or `UPDATE … WHERE` on the version the writer saw,
 * whose result row is also sent with `pg_notify` in the same statement (so
 * the notification is delivered exactly when the write commits).
 */
import { createHash } from 'node:crypto';
import { quoteIdent } from './options.js';

/** What a statement returns of a row (and what a notification carries). */
export interface RowView {
  /** The table's oid (`tableoid`): changes when the table is dropped and made again. */
  readonly inc: string;
  readonly name: string | null;
  readonly holder: string | null;
  readonly holder_id: string | null;
  readonly state: string | null;
  /** bigint as text; null when the election has no row. */
  readonly version: string | null;
  readonly token: string | null;
  readonly term_id: string | null;
  readonly attempt: number | null;
  /** The lease ran out by the database's clock (`expires_at <= now()`). */
  readonly expired: boolean | null;
  /** Milliseconds the lease has left by the database's clock (0 when expired). */
  readonly remaining_ms: number | null;
}

/** The columns every statement returns, for a row aliased `r`. */
const COLUMNS = `r.name, r.holder, r.holder_id, r.state, r.version::text AS version,
  r.token::text AS token, r.term_id, r.attempt, (r.expires_at <= now()) AS expired,
  GREATEST(0, CEIL(EXTRACT(EPOCH FROM (r.expires_at - now())) * 1000))::float8 AS remaining_ms`;

/** A lease of `$n` milliseconds from now, by the database's clock. */
const lease = (n: number): string => `now() + $${n}::float8 * interval '1 millisecond'`;

/** The schema SQL and statements of one table. */
export class ElectionSql {
  /** `"schema"."table"`, also the text given to `to_regclass`. */
  readonly table: string;
  readonly sequence: string;
  /** The NOTIFY channel of this table: `nme_` and a hash of its qualified name. */
  readonly channel: string;

  constructor(
    readonly schema: string,
    readonly tableName: string,
  ) {
    this.table = `${quoteIdent(schema)}.${quoteIdent(tableName)}`;
    this.sequence = `${quoteIdent(schema)}.${quoteIdent(`${tableName}_seq`)}`;
    this.channel = `nme_${createHash('sha256').update(`${schema}.${tableName}`).digest('hex').slice(0, 24)}`;
  }

  /** The DDL, for `CREATE … IF NOT EXISTS` on first use or for a team's migrations. */
  ddl(): string[] {
    return [
      `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.schema)}`,
      // Not OWNED BY the table: tokens keep growing even if the table is dropped and made again.
      `CREATE SEQUENCE IF NOT EXISTS ${this.sequence} AS bigint`,
      `CREATE TABLE IF NOT EXISTS ${this.table} (
  name        text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 256),
  holder      text NOT NULL,
  holder_id   text NOT NULL,
  state       text NOT NULL CHECK (state IN ('held', 'ended', 'released')),
  version     bigint NOT NULL,
  token       bigint NOT NULL,
  term_id     text NOT NULL,
  attempt     integer NOT NULL DEFAULT 0,
  expires_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50)`,
    ];
  }

  /** $1 schema name, $2 table, $3 sequence: which of them exist. */
  readonly exists = `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema_ok,
  to_regclass($2) IS NOT NULL AS table_ok, to_regclass($3) IS NOT NULL AS sequence_ok`;

  /** $1 name, $2 table: the row (or none) and the table's oid. */
  get read(): string {
    return `SELECT c.inc, ${COLUMNS}
FROM (SELECT $2::regclass::oid::text AS inc) c LEFT JOIN ${this.table} r ON r.name = $1`;
  }

  private notifying(write: string, channelParam: number): string {
    return `WITH w AS (${write}
  RETURNING r.tableoid::text AS inc, ${COLUMNS})
SELECT w.*, pg_notify($${channelParam}, row_to_json(w)::text) FROM w`;
  }

  /**
   * Starts a term. $1 name, $2 holder, $3 holder id, $4 term id, $5 lease ms,
   * $6 basis version ('0': no row), $7 basis table oid, $8 table, $9 channel.
   * Wins if the row is missing (and the table is the basis's), or still at
   * the basis version, or released, or its lease ran out.
   */
  get create(): string {
    return this.notifying(
      `INSERT INTO ${this.table} AS r
    (name, holder, holder_id, state, version, token, term_id, attempt, expires_at, updated_at)
  SELECT $1, $2, $3, 'held', nextval('${this.sequence}'), nextval('${this.sequence}'), $4, 0, ${lease(5)}, now()
  WHERE $8::regclass::oid = $7::oid
  ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, holder_id = excluded.holder_id,
    state = 'held', version = nextval('${this.sequence}'), token = nextval('${this.sequence}'),
    term_id = excluded.term_id, attempt = 0, expires_at = excluded.expires_at, updated_at = now()
  WHERE (r.version = $6::bigint AND r.tableoid = $7::oid) OR r.state = 'released' OR r.expires_at <= now()`,
      9,
    );
  }

  /** $1 name, $2 term id, $3 version, $4 attempt, $5 lease ms, $6 channel. */
  get renew(): string {
    return this.notifying(
      `UPDATE ${this.table} AS r SET version = nextval('${this.sequence}'), attempt = $4,
    expires_at = ${lease(5)}, updated_at = now()
  WHERE r.name = $1 AND r.term_id = $2 AND r.version = $3::bigint AND r.state = 'held'
    AND r.expires_at > now()`,
      6,
    );
  }

  /** $1 name, $2 term id, $3 channel. */
  get release(): string {
    return this.notifying(
      `UPDATE ${this.table} AS r SET state = 'released', version = nextval('${this.sequence}'),
    expires_at = now(), updated_at = now()
  WHERE r.name = $1 AND r.term_id = $2 AND r.state IN ('held', 'ended')`,
      3,
    );
  }

  /** $1 name, $2 version, $3 table oid, $4 channel. The lease is kept: the holder may act until it runs out. */
  get depose(): string {
    return this.notifying(
      `UPDATE ${this.table} AS r SET state = 'ended', version = nextval('${this.sequence}'),
    updated_at = now()
  WHERE r.name = $1 AND r.version = $2::bigint AND r.tableoid = $3::oid AND r.state = 'held'
    AND r.expires_at > now()`,
      4,
    );
  }
}

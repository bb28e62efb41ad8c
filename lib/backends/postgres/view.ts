/** How a row of the election table reads as the port's snapshots and versions. */
import type {
  LockRecord,
  LockRecordState,
  LockSnapshot,
  LockVersion,
} from '../../election/port.js';
import type { RowView } from './sql.js';

/** A version of one election's row, as this backend issues it. */
export interface PgVersion extends LockVersion {
  /** The lock family that issued it (the store's identity and the election's name). */
  readonly owner: object;
  readonly name: string;
  /** The table's oid when read. */
  readonly inc: string;
  /** The row's version (bigint as text; `'0'`: no row). */
  readonly version: string;
  /** The row was read after its lease ran out (by the database's clock): it reads as no record. */
  readonly expired: boolean;
}

/** A snapshot with what a watch needs to order it. */
export interface View {
  readonly snapshot: LockSnapshot & { readonly version: PgVersion };
  readonly inc: string;
  readonly v: bigint;
  readonly expired: boolean;
  /** Milliseconds the lease had left by the database's clock when read (0: none or expired). */
  readonly remainingMs: number;
  /** The attempt number of the holder's last renewal (0: none yet). */
  readonly attempt: number;
}

const STATES: readonly string[] = ['held', 'ended', 'released'];

/**
 * Turns a row (from a read, a write's RETURNING, or a notification) into a
 * snapshot. A `held` or `ended` row whose lease ran out by the database's
 * clock reads as no record (the store expired the holder) with a version key
 * of its own (`:x`), so the change is seen and a create may take it.
 */
export function toView(owner: object, name: string, row: RowView): View {
  const inc = String(row.inc);
  if (row.version === null || row.version === undefined) {
    const version: PgVersion = {
      key: `${inc}:0`,
      owner,
      name,
      inc,
      version: '0',
      expired: false,
    };
    return {
      snapshot: { version, record: null, liveness: `${inc}:0` },
      inc,
      v: 0n,
      expired: false,
      remainingMs: 0,
      attempt: 0,
    };
  }
  const state = (STATES.includes(row.state ?? '') ? row.state : 'held') as LockRecordState;
  const expired = state !== 'released' && row.expired === true;
  const version: PgVersion = {
    key: `${inc}:${row.version}${expired ? ':x' : ''}`,
    owner,
    name,
    inc,
    version: row.version,
    expired,
  };
  const record: LockRecord | null = expired
    ? null
    : {
        state,
        holder: row.holder ?? '',
        holderId: row.holder_id ?? '',
        token: Number(row.token),
        termId: row.term_id ?? '',
      };
  // Changes when a term starts and with each renewal (its attempt), not when a term is ended.
  const liveness =
    state === 'released'
      ? `${inc}:released:${row.version}`
      : `${inc}:${row.token}:${row.attempt ?? 0}${expired ? ':x' : ''}`;
  return {
    snapshot: { version, record, liveness },
    inc,
    v: BigInt(row.version),
    expired,
    remainingMs: expired ? 0 : Math.max(0, Number(row.remaining_ms ?? 0)),
    attempt: Number(row.attempt ?? 0),
  };
}

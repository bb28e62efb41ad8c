/**
 * The lease record kept in `/ns/service/master-lease/<name>`, beside the Go
 * package's election file. Its body is JSON; it carries no timestamps, only
 * identities and counters, because a process never trusts another's clock.
 */

/** The lease file's body. */
export interface LeaseRecord {
  /** Format version: 1. */
  readonly v: 1;
  /** `held`: the holder is master (while it keeps renewing); `released`: free for the next master. */
  readonly state: 'held' | 'released';
  /** The fencing token of the term: the rev of the election file the holder created. */
  readonly term: number;
  /** The holder's advertised `host:port` (for operators). */
  readonly holder: string;
  /** Random id of the holder's election client (two processes may share an address). */
  readonly id: string;
  /** Renewal counter within the term, from 0. */
  readonly seq: number;
  /**
   * Random per term (and per release). Revs are only unique within one store:
   * after a server restarts empty, a record can reappear at the rev a
   * lagging participant remembers, with the same holder, term and seq. The
   * nonce makes the body differ, so it is seen as the change it is.
   */
  readonly nonce?: string;
}

/** The lease file's path for an election name. */
export const leasePath = (name: string): string => `/ns/service/master-lease/${name}`;
/** The election file's path for an election name (the Go package's). */
export const electionPath = (name: string): string => `/ns/service/master/${name}`;
/** One glob that matches both files of an election, so one WAIT stream orders all their changes. */
export const electionGlob = (name: string): string => `/ns/service/master*/${name}`;

export function encodeLease(record: LeaseRecord): string {
  return JSON.stringify(record);
}

/** Parses a lease body; `null` for an empty, foreign or garbled body (waited out like a silent holder). */
export function parseLease(body: string): LeaseRecord | null {
  if (body === '') return null;
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Record<string, unknown>;
  if (
    r.v !== 1 ||
    (r.state !== 'held' && r.state !== 'released') ||
    !Number.isSafeInteger(r.term) ||
    typeof r.holder !== 'string' ||
    typeof r.id !== 'string' ||
    !Number.isSafeInteger(r.seq)
  ) {
    return null;
  }
  if (r.nonce !== undefined && typeof r.nonce !== 'string') return null;
  return {
    v: 1,
    state: r.state,
    term: r.term as number,
    holder: r.holder,
    id: r.id,
    seq: r.seq as number,
    ...(r.nonce === undefined ? {} : { nonce: r.nonce }),
  };
}

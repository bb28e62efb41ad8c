/** The etcd requests of a lock, built in one place (see layout.ts for the keys). */
import type { IRangeRequest, ITxnRequest } from 'etcd3';
import { rangeEnd, type CandidateKey } from './layout.js';

/** The leader: the key under the election prefix with the lowest create revision (Go's `WithFirstCreate`). */
export function leaderRange(prefix: Buffer): IRangeRequest {
  return {
    key: prefix,
    range_end: rangeEnd(prefix),
    sort_order: 'Ascend',
    sort_target: 'Create',
    limit: 1,
  };
}

/** Puts our key bound to our lease only if no key exists under the prefix; else reads the leader. */
export function createTxn(prefix: Buffer, key: string, value: string, lease: string): ITxnRequest {
  return {
    compare: [
      {
        key: prefix,
        range_end: rangeEnd(prefix),
        target: 'Create',
        result: 'Equal',
        create_revision: 0,
      },
    ],
    success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(value), lease } }],
    failure: [{ request_range: leaderRange(prefix) }],
  };
}

/** Deletes a candidate key if it is still the one created at `create` (and, with `mod`, unchanged since). */
export function deleteTxn(key: string, create: number, mod?: number): ITxnRequest {
  const k = Buffer.from(key);
  return {
    compare: [
      { key: k, target: 'Create', result: 'Equal', create_revision: create },
      ...(mod === undefined
        ? []
        : [{ key: k, target: 'Mod' as const, result: 'Equal' as const, mod_revision: mod }]),
    ],
    success: [{ request_delete_range: { key: k } }],
  };
}

/** Deletes our key (a create whose answer was lost may have left it), then reads the leader. */
export function cleanupTxn(prefix: Buffer, key: string): ITxnRequest {
  return {
    success: [
      { request_delete_range: { key: Buffer.from(key) } },
      { request_range: leaderRange(prefix) },
    ],
  };
}

/** Our key as the leader, as a create that just succeeded at revision `rev` made it. */
export function ownLeader(
  key: string,
  suffix: string,
  rev: number,
  value: string,
  lease: string,
): CandidateKey {
  return { key, suffix, create: rev, mod: rev, value, lease };
}

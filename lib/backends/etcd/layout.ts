/**
 * The key layout of etcd's own elections (Go's `concurrency.Election`, and
 * so `etcdctl elect`), and what a lock reads from it.
 *
 * An election named `name` (under the store's prefix `p`) keeps one key per
 * candidate under `p + name + '/'`, named by the candidate's lease id in
 * lowercase hex (Go: `fmt.Sprintf("%s%x", prefix, leaseID)`), the value
 * being the candidate's proposal (for us: the master's `host:port`). The
 * leader is the key with the lowest create revision. Its create revision is
 * the term's fencing token.
 */
import type { LockRecord, LockSnapshot, LockTerm, LockVersion } from '../../election/port.js';

/** A key under the election's prefix, as the lock needs it. */
export interface CandidateKey {
  /** The full key. */
  readonly key: string;
  /** The key after the election prefix (the lease id in hex, for keys of etcd elections). */
  readonly suffix: string;
  readonly create: number;
  readonly mod: number;
  readonly value: string;
  /** The key's lease id (decimal, as etcd3 gives it); `'0'` for none. */
  readonly lease: string;
}

/** A version of an election's record: which key leads, at which store revision. */
export interface EtcdVersion extends LockVersion {
  /** Who issued it: the store and the election prefix. */
  readonly owner: object;
  readonly election: string;
  /** The cluster's id (changes when the store is another cluster). */
  readonly cluster: string;
  /** The store revision this version was read or seen at (a watch goes on after it). */
  readonly rev: number;
  readonly leader: CandidateKey | null;
}

/** A term won through an etcd lock. */
export interface EtcdTerm extends LockTerm {
  readonly version: EtcdVersion;
  readonly lockId: string;
  /** Our lease (decimal) and our key. */
  readonly lease: string;
  readonly key: string;
}

/** The key of lease `lease` (decimal string) under `electionPrefix`, Go's way. */
export function candidateKey(electionPrefix: string, lease: string): string {
  return `${electionPrefix}${BigInt(lease).toString(16)}`;
}

/** The end of the key range of every key starting with `prefix` (etcd's `WithPrefix`). */
export function rangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** The raw key-value of etcd3's answers, in the fields we read. */
export interface RawKv {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly create_revision: string;
  readonly mod_revision: string;
  readonly lease: string;
}

export function toCandidate(electionPrefix: string, kv: RawKv): CandidateKey {
  const key = kv.key.toString('utf8');
  return {
    key,
    suffix: key.slice(electionPrefix.length),
    create: Number(kv.create_revision),
    mod: Number(kv.mod_revision),
    value: kv.value.toString('utf8'),
    lease: String(kv.lease || '0'),
  };
}

/** The candidate that leads: the lowest create revision. */
export function leaderOf(keys: Iterable<CandidateKey>): CandidateKey | null {
  let best: CandidateKey | null = null;
  for (const k of keys) if (!best || k.create < best.create) best = k;
  return best;
}

/** The version key: equal for the same leader key at the same modification, in the same cluster. */
export function versionKey(cluster: string, leader: CandidateKey | null): string {
  return leader ? `${cluster}:${leader.create}:${leader.mod}` : `${cluster}:0:0`;
}

/** The term id of a leader key: unique across clusters and leases. */
export function termIdOf(cluster: string, leader: CandidateKey): string {
  return `${cluster}:${leader.create}:${leader.suffix}`;
}

/**
 * The record a leader key stands for. A leader is always `held`: its holder
 * proves it is alive by keeping its lease, and etcd deletes the key when
 * the lease ends. `holderId` is the key's suffix (the lease id in hex), also
 * for candidates that are not ours (`etcdctl elect`, Go programs).
 */
export function recordOf(cluster: string, leader: CandidateKey | null): LockRecord | null {
  if (!leader) return null;
  return {
    state: 'held',
    holder: leader.value,
    holderId: leader.suffix,
    token: leader.create,
    termId: termIdOf(cluster, leader),
  };
}

/** A snapshot of the election at `rev` with `leader` leading. */
export function snapshotOf(
  owner: object,
  election: string,
  cluster: string,
  rev: number,
  leader: CandidateKey | null,
): LockSnapshot {
  const key = versionKey(cluster, leader);
  const version: EtcdVersion = { key, owner, election, cluster, rev, leader };
  return { version, record: recordOf(cluster, leader), liveness: key };
}

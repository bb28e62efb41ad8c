/**
 * One election on etcd as one participant sees and writes it, in the key
 * layout of etcd's own elections (see layout.ts and docs/backends/etcd.md).
 *
 * - The lock's lease id is chosen at random when the lock is made and is its
 *   {@link ElectionLock.id} (in hex, the name of its key). The lease is
 *   granted with that id on the first create, and granted again with the
 *   same id should etcd have ended it.
 * - create: one transaction that puts our key (bound to our lease) only if
 *   no key exists under the election prefix, with a lease keepalive sent
 *   alongside: the lease then lives at least a TTL from the attempt's start.
 * - renew: a lease keepalive alongside a read of the leader. A master's
 *   lease is kept alive only by renew (the engine's renew loop), so a master
 *   that stops renewing loses its key a TTL later; an idle participant's
 *   lease is kept alive by the lock every TTL/3.
 * - release and depose delete the leader key in a transaction comparing its
 *   create (and mod) revision.
 */
import { randomBytes } from 'node:crypto';
import type { IRangeResponse } from 'etcd3';
import { LockArgumentError } from '../../election/errors.js';
import type {
  CreateResult,
  ElectionLock,
  LockCallOptions,
  LockCapabilities,
  LockErrorKind,
  LockEvent,
  LockRead,
  LockRequest,
  LockStatus,
  LockTerm,
  LockVersion,
  RenewResult,
} from '../../election/port.js';
import type { ElectionLogger } from '../../election/types.js';
import { bounded, grpcOptions } from './call.js';
import { EtcdStoreError, toStoreError } from './errors.js';
import type { KeepAlives } from './keepalive.js';
import { cleanupTxn, createTxn, deleteTxn, leaderRange, ownLeader } from './requests.js';
import {
  candidateKey,
  snapshotOf,
  termIdOf,
  toCandidate,
  type CandidateKey,
  type EtcdTerm,
  type EtcdVersion,
} from './layout.js';
import { watchElection, type WatchContext } from './watch.js';

/** What a lock shares with its store. */
export interface EtcdLockContext extends Pick<
  WatchContext,
  'client' | 'owner' | 'redact' | 'established'
> {
  readonly keepalives: KeepAlives;
  /** The store, for toString (redacted). */
  readonly where: string;
  /** Called once when the lock closes. */
  readonly closed: (lock: EtcdLock) => void;
}

/** A random positive 63-bit lease id, as a decimal string. */
function randomLeaseId(): string {
  const n = randomBytes(8).readBigUInt64BE() & 0x7fffffffffffffffn;
  return (n === 0n ? 1n : n).toString();
}

export class EtcdLock implements ElectionLock {
  readonly backend = 'etcd';
  readonly capabilities: LockCapabilities = { expiry: 'store', absentProvesNoMaster: true };
  readonly id: string;
  private readonly lease = randomLeaseId();
  private readonly key: string;
  private readonly prefix: Buffer;
  private readonly address: string;
  private readonly participating: boolean;
  private readonly ttl: number;
  private readonly logger: ElectionLogger;
  private leaseAlive = false;
  private grantedTtl = 0;
  /** The term handed out and not yet released or lost. */
  private term: EtcdTerm | null = null;
  /** A create whose answer was lost may have put our key: the next read deletes it. */
  private dirty = false;
  private seenCluster: string | null = null;
  private seenRev = 0;
  private closed = false;
  private readonly closing = new AbortController();
  private idle: NodeJS.Timeout | undefined;
  private lastError: string | undefined;

  constructor(
    private readonly ctx: EtcdLockContext,
    /** The election prefix, `<prefix><name>/`. */
    private readonly election: string,
    private readonly name: string,
    request: LockRequest,
    ttlSeconds: number,
  ) {
    this.id = BigInt(this.lease).toString(16);
    this.key = candidateKey(election, this.lease);
    this.prefix = Buffer.from(election);
    this.address = request.address;
    this.participating = request.participating;
    this.ttl = ttlSeconds;
    this.logger = request.logger;
  }

  async read(options: LockCallOptions): Promise<LockRead> {
    this.enter();
    const res = await this.call('read', options, async (o) => {
      if (this.dirty && !this.term) {
        // Delete the key a create with a lost answer may have left, then read.
        const t = await this.ctx.client.kv.txn(cleanupTxn(this.prefix, this.key), o);
        this.dirty = false;
        return { header: t.header, kvs: t.responses[1]?.response_range?.kvs ?? [] };
      }
      return this.ctx.client.kv.range(leaderRange(this.prefix), o);
    });
    const cluster = res.header.cluster_id;
    const rev = Number(res.header.revision);
    const stateLost =
      this.seenCluster !== null && (cluster !== this.seenCluster || rev < this.seenRev);
    if (stateLost) this.endTerm();
    this.seen(cluster, rev);
    const leader = this.leaderFrom(res.kvs);
    return { ...snapshotOf(this.ctx.owner, this.election, cluster, rev, leader), stateLost };
  }

  watch(from: LockVersion, signal: AbortSignal): AsyncIterable<LockEvent> {
    const v = this.version(from, 'from');
    const both = AbortSignal.any([signal, this.closing.signal]);
    return watchElection(
      {
        client: this.ctx.client,
        owner: this.ctx.owner,
        election: this.election,
        redact: this.ctx.redact,
        timeoutMs: Math.max(5000, this.ttl * 1000),
        established: this.ctx.established,
      },
      v,
      both,
    );
  }

  async create(basis: LockVersion, options: LockCallOptions): Promise<CreateResult> {
    const b = this.version(basis, 'basis');
    this.mayRun('create');
    this.enter();
    if (this.seenCluster !== null && b.cluster !== this.seenCluster) return { kind: 'lost' };
    const granted = this.leaseAlive;
    if (!granted) await this.grant(options);
    const txn = this.call('create', options, (o) =>
      this.ctx.client.kv.txn(createTxn(this.prefix, this.key, this.address, this.lease), o),
    );
    // A lease just granted lives a TTL from now; else keep it alive alongside the put.
    const alive = granted ? this.keepAlive(options) : Promise.resolve(this.grantedTtl);
    let res: Awaited<typeof txn>;
    try {
      const [ttl, r] = await Promise.all([alive, txn]);
      res = r;
      if (ttl <= 0) throw new EtcdStoreError('transient', 'etcd create: our lease had expired');
    } catch (err) {
      this.dirty = true;
      if (/lease not found|expired/i.test(String((err as Error).message))) this.leaseAlive = false;
      throw err;
    }
    const cluster = res.header.cluster_id;
    const rev = Number(res.header.revision);
    this.seen(cluster, rev);
    let leader: CandidateKey | null;
    if (res.succeeded) {
      leader = ownLeader(this.key, this.id, rev, this.address, this.lease);
    } else {
      leader = this.leaderFrom(res.responses[0]?.response_range?.kvs ?? []);
      // Our own earlier put, whose answer was lost, is the leader: it is our term.
      if (leader?.key !== this.key) return { kind: 'lost' };
    }
    this.dirty = false;
    const term: EtcdTerm = {
      token: leader.create,
      termId: termIdOf(cluster, leader),
      version: snapshotOf(this.ctx.owner, this.election, cluster, rev, leader)
        .version as EtcdVersion,
      lockId: this.id,
      lease: this.lease,
      key: this.key,
    };
    this.term = term;
    return { kind: 'won', term };
  }

  async renew(term: LockTerm, attempt: number, options: LockCallOptions): Promise<RenewResult> {
    const t = this.ownTerm(term);
    this.mayRun('renew');
    this.enter();
    const [ttl, res] = await Promise.all([
      this.leaseAlive ? this.keepAlive(options) : Promise.resolve(0),
      this.call('renew', options, (o) => this.ctx.client.kv.range(leaderRange(this.prefix), o)),
    ]);
    const cluster = res.header.cluster_id;
    const rev = Number(res.header.revision);
    this.seen(cluster, rev);
    const leader = this.leaderFrom(res.kvs);
    const ours =
      leader?.key === t.key && leader.create === t.token && cluster === t.version.cluster;
    if (ttl > 0 && ours) {
      const version = snapshotOf(this.ctx.owner, this.election, cluster, rev, leader).version;
      const renewed: EtcdTerm = { ...t, version: version as EtcdVersion };
      if (this.term?.termId === t.termId) this.term = renewed;
      return { kind: 'renewed', term: renewed, attempt };
    }
    if (this.term?.termId === t.termId) this.endTerm();
    return { kind: 'lost', holder: ours ? '' : (leader?.value ?? '') };
  }

  async release(term: LockTerm, options: LockCallOptions): Promise<'released' | 'not-held'> {
    const t = this.ownTerm(term);
    this.enter();
    const res = await this.call('release', options, (o) =>
      this.ctx.client.kv.txn(deleteTxn(t.key, t.token), o),
    );
    if (this.term?.termId === t.termId) this.endTerm();
    return res.succeeded ? 'released' : 'not-held';
  }

  async depose(version: LockVersion, options: LockCallOptions): Promise<'deposed' | 'changed'> {
    const v = this.version(version, 'version');
    this.enter();
    const leader = v.leader;
    if (!leader) return 'changed';
    const res = await this.call('depose', options, (o) =>
      this.ctx.client.kv.txn(deleteTxn(leader.key, leader.create, leader.mod), o),
    );
    return res.succeeded ? 'deposed' : 'changed';
  }

  classify(err: unknown): LockErrorKind {
    if (err instanceof LockArgumentError) return 'fatal';
    return toStoreError(err, 'call', this.ctx.redact).kind;
  }

  status(): LockStatus {
    if (this.closed) return { connected: false, detail: 'closed' };
    return this.lastError === undefined
      ? { connected: true }
      : { connected: false, detail: this.lastError };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ctx.closed(this);
    this.closing.abort();
    clearInterval(this.idle);
    this.idle = undefined;
    if (this.leaseAlive) {
      this.leaseAlive = false;
      // Frees our lease (and with it any key of ours) now rather than a TTL later.
      await this.ctx.client.leaseClient
        .leaseRevoke({ ID: this.lease }, { deadline: new Date(Date.now() + 2000) })
        .catch(() => {});
    }
  }

  toString(): string {
    return `etcd election ${JSON.stringify(this.name)} (keys ${JSON.stringify(this.election)}) at ${this.ctx.where}`;
  }

  // ---------------------------------------------------------------- internals

  private leaderFrom(kvs: IRangeResponse['kvs']): CandidateKey | null {
    const kv = kvs[0];
    return kv ? toCandidate(this.election, kv) : null;
  }

  private seen(cluster: string, rev: number): void {
    if (cluster !== this.seenCluster) this.seenRev = 0;
    this.seenCluster = cluster;
    this.seenRev = Math.max(this.seenRev, rev);
  }

  /** Runs one etcd call bounded by `options`, mapping errors and noting the connection's state. */
  private async call<T>(
    what: string,
    options: LockCallOptions,
    fn: (o: { deadline: Date }) => Promise<T>,
  ): Promise<T> {
    try {
      const r = await bounded(what, options, fn(grpcOptions(options)));
      this.lastError = undefined;
      return r;
    } catch (err) {
      const e = toStoreError(err, what, this.ctx.redact);
      if (e.kind === 'transient') this.lastError = e.message;
      throw e;
    }
  }

  private async grant(options: LockCallOptions): Promise<void> {
    try {
      const res = await this.call('lease grant', options, (o) =>
        this.ctx.client.leaseClient.leaseGrant({ ID: this.lease, TTL: this.ttl }, o),
      );
      this.grantedTtl = Number(res.TTL);
      if (this.grantedTtl > this.ttl) {
        this.logger.log(
          `etcd raised the lease TTL of ${this.toString()} from ${this.ttl} s to its minimum of ${this.grantedTtl} s`,
        );
      }
    } catch (err) {
      // Our own earlier grant whose answer was lost (the id is ours: 63 random bits).
      if (!/lease already exists/i.test((err as Error).message)) throw err;
      this.grantedTtl = Math.max(this.grantedTtl, this.ttl);
    }
    this.leaseAlive = true;
    this.startIdleKeepalive();
  }

  private async keepAlive(options: LockCallOptions): Promise<number> {
    const ttl = await this.ctx.keepalives.once(this.lease, options);
    if (ttl <= 0) this.leaseAlive = false;
    return ttl;
  }

  /** Keeps an idle participant's lease alive every TTL/3; a master's lease is kept alive by renew. */
  private startIdleKeepalive(): void {
    if (this.idle || this.closed) return;
    const every = Math.max(200, (Math.max(this.grantedTtl, this.ttl) * 1000) / 3);
    this.idle = setInterval(() => {
      // A create with a lost answer may have left our key: let the lease (and the key) run out.
      if (this.term || this.dirty || !this.leaseAlive || this.closed) return;
      this.keepAlive({ timeoutMs: every }).catch(() => {});
    }, every);
    this.idle.unref();
  }

  private endTerm(): void {
    this.term = null;
  }

  private enter(): void {
    if (this.closed) throw new EtcdStoreError('fatal', `${this.toString()}: the lock is closed`);
  }

  private mayRun(what: string): void {
    if (!this.participating) {
      throw new LockArgumentError('participating', `a passive participant may not ${what} a term`);
    }
  }

  private version(v: LockVersion, argument: string): EtcdVersion {
    const x = v as Partial<EtcdVersion> | null;
    if (
      !x ||
      x.owner !== this.ctx.owner ||
      x.election !== this.election ||
      typeof x.key !== 'string'
    ) {
      throw new LockArgumentError(argument, `not a version of ${this.toString()}`);
    }
    return x as EtcdVersion;
  }

  private ownTerm(term: LockTerm): EtcdTerm {
    const t = term as Partial<EtcdTerm> | null;
    if (!t || t.lockId !== this.id || t.key !== this.key) {
      throw new LockArgumentError('term', `not a term won through this lock (${this.toString()})`);
    }
    this.version(t.version as LockVersion, 'term');
    return t as EtcdTerm;
  }
}

/** The etcd election store: one etcd3 client shared by every election of a process. */
import type { Etcd3 } from 'etcd3';
import { ElectionConfigError } from '../../election/errors.js';
import type { ElectionLock, ElectionStore, LockRequest } from '../../election/port.js';
import { newClient } from './driver.js';
import { EtcdStoreError, toStoreError } from './errors.js';
import { KeepAlives } from './keepalive.js';
import { rangeEnd } from './layout.js';
import { EtcdLock } from './lock.js';
import {
  describeEtcd,
  parseEtcdUri,
  redactor,
  resolveEtcdOptions,
  type EtcdStoreOptions,
} from './options.js';

/** etcd's largest lease TTL, in seconds. */
const MAX_TTL_SECONDS = 9_000_000_000;
const MAX_NAME_LENGTH = 256;

const hasControl = (s: string): boolean =>
  [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

/**
 * The lease TTL for `leaseMs`: whole seconds, rounded up, at least 1. (etcd
 * itself raises a TTL below its minimum, 1.5 × the election timeout rounded
 * up: 2 s with etcd's default 1 s election timeout.)
 */
export function leaseTtlSeconds(leaseMs: number): number {
  return Math.max(1, Math.ceil(leaseMs / 1000));
}

/** Checks an election name for etcd: see docs/backends/etcd.md (the prefix rule). */
function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new ElectionConfigError('name', 'an etcd election needs a non-empty name');
  }
  if (name.length > MAX_NAME_LENGTH || hasControl(name)) {
    throw new ElectionConfigError(
      'name',
      `invalid election name ${JSON.stringify(name.slice(0, 64))}: 1 to ${MAX_NAME_LENGTH} characters without control characters`,
    );
  }
  if (name.includes('/')) {
    throw new ElectionConfigError(
      'name',
      `${JSON.stringify(name)} contains "/": etcd keeps an election's candidates under "<name>/", so an election "a/b" would be a candidate of election "a"; put hierarchy in the store's prefix instead`,
    );
  }
  return name;
}

/**
 * Elections on etcd v3, in the key layout of etcd's own elections (so
 * `etcdctl elect` and Go's `concurrency.Election` take part). Make one with
 * {@link EtcdElectionStore.connect} (it owns its client; {@link close} it)
 * or {@link EtcdElectionStore.fromClient} (your client; never closed here).
 */
export class EtcdElectionStore implements ElectionStore {
  readonly backend = 'etcd';
  private readonly keepalives: KeepAlives;
  private readonly locks = new Set<EtcdLock>();
  private watches = 0;

  private constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly where: string,
    private readonly redact: (s: string) => string,
    private readonly owned: boolean,
  ) {
    this.keepalives = new KeepAlives(client, redact);
  }

  /**
   * Connects to etcd: `etcd://[user:password@]host:port[,host:port...][/prefix]`
   * or {@link EtcdStoreOptions}. Reads once (within `dialTimeoutMs`) so that
   * an unreachable endpoint or refused credentials fail here, as an
   * {@link EtcdStoreError} (`transient` or `fatal`), before anything is written.
   */
  static async connect(target: string | EtcdStoreOptions): Promise<EtcdElectionStore> {
    const options = resolveEtcdOptions(typeof target === 'string' ? parseEtcdUri(target) : target);
    const where = describeEtcd(options);
    const redact = redactor(options);
    const client = await newClient(options);
    const store = new EtcdElectionStore(client, options.prefix, where, redact, true);
    try {
      const probe = Buffer.from(options.prefix || '\0');
      await client.kv.range(
        { key: probe, range_end: rangeEnd(probe), limit: 1, keys_only: true },
        { deadline: new Date(Date.now() + options.dialTimeoutMs) },
      );
    } catch (err) {
      client.close();
      const e = toStoreError(err, `connect to ${where}`, redact);
      throw new EtcdStoreError(e.kind, e.message);
    }
    return store;
  }

  /** A store on your own `etcd3` client (not closed by {@link close}); `prefix` as in {@link EtcdStoreOptions.prefix}. */
  static fromClient(client: Etcd3, options: { prefix?: string } = {}): EtcdElectionStore {
    const { prefix } = resolveEtcdOptions({ endpoints: ['given:1'], prefix: options.prefix ?? '' });
    return new EtcdElectionStore(client, prefix, `etcd (your client)/${prefix}`, (s) => s, false);
  }

  async openLock(request: LockRequest): Promise<ElectionLock> {
    const name = checkName(request.name);
    const { leaseMs } = request.timing;
    if (!Number.isFinite(leaseMs) || leaseMs <= 0 || leaseMs / 1000 > MAX_TTL_SECONDS) {
      throw new ElectionConfigError(
        'leaseMs',
        `must be a positive number of ms of at most ${MAX_TTL_SECONDS} s (etcd's largest lease TTL)`,
      );
    }
    await Promise.resolve();
    const lock = new EtcdLock(
      {
        client: this.client,
        keepalives: this.keepalives,
        owner: this,
        redact: this.redact,
        where: this.where,
        established: (delta) => (this.watches += delta),
        closed: (l) => this.locks.delete(l),
      },
      `${this.prefix}${name}/`,
      name,
      request,
      leaseTtlSeconds(leaseMs),
    );
    this.locks.add(lock);
    return lock;
  }

  /** How many watch streams of this store's locks etcd has confirmed and not yet ended (for health views and tests). */
  get openWatches(): number {
    return this.watches;
  }

  /** Closes the locks still open and, if this store made its client, the client. */
  async close(): Promise<void> {
    await Promise.all([...this.locks].map((l) => l.close()));
    this.locks.clear();
    this.keepalives.close();
    if (this.owned) this.client.close();
  }

  toString(): string {
    return `etcd store ${this.where}`;
  }
}

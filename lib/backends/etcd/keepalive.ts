/**
 * Lease keepalives of one store: one `LeaseKeepAlive` stream shared by all
 * its locks, requests and answers matched by lease id. A lost stream fails
 * the keepalives waiting on it (transient) and is opened again on the next.
 */
import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';
import type { LockCallOptions } from '../../election/port.js';
import { bounded } from './call.js';
import { EtcdStoreError, toStoreError } from './errors.js';

type Stream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

interface Waiter {
  resolve(ttl: number): void;
  reject(err: unknown): void;
}

export class KeepAlives {
  private stream: Promise<Stream> | null = null;
  private readonly waiting = new Map<string, Waiter[]>();
  private closed = false;

  constructor(
    private readonly client: Etcd3,
    private readonly redact: (s: string) => string,
  ) {}

  /**
   * Keeps lease `lease` (decimal id) alive once: resolves with the TTL etcd
   * granted from now, in seconds; 0 when the lease no longer exists.
   */
  async once(lease: string, options: LockCallOptions): Promise<number> {
    if (this.closed) throw new EtcdStoreError('fatal', 'etcd keepalive: the store is closed');
    const answer = new Promise<number>((resolve, reject) => {
      const list = this.waiting.get(lease) ?? [];
      list.push({ resolve, reject });
      this.waiting.set(lease, list);
    });
    const work = (async () => {
      const stream = await this.open();
      stream.write({ ID: lease });
      return answer;
    })();
    try {
      return await bounded('lease keepalive', options, work);
    } catch (err) {
      this.forget(lease);
      throw toStoreError(err, 'lease keepalive', this.redact);
    }
  }

  close(): void {
    this.closed = true;
    this.fail(new EtcdStoreError('transient', 'etcd keepalive: the store is closed'));
  }

  private forget(lease: string): void {
    const list = this.waiting.get(lease);
    list?.shift();
    if (list?.length === 0) this.waiting.delete(lease);
  }

  private open(): Promise<Stream> {
    if (this.stream) return this.stream;
    const opening = this.client.leaseClient.leaseKeepAlive().then((stream) => {
      const lost = (why: string): void => {
        if (this.stream === opening) this.stream = null;
        this.fail(
          new EtcdStoreError('transient', `etcd keepalive stream lost: ${this.redact(why)}`),
        );
      };
      stream.on('data', (res) => this.answer(res));
      stream.on('error', (err) => lost(err.message));
      stream.on('end', () => lost('ended'));
      if (this.closed) stream.cancel();
      return stream;
    });
    opening.catch(() => {
      if (this.stream === opening) this.stream = null;
    });
    this.stream = opening;
    return opening;
  }

  private answer(res: ILeaseKeepAliveResponse): void {
    const id = String(res.ID);
    const list = this.waiting.get(id);
    const w = list?.shift();
    if (list?.length === 0) this.waiting.delete(id);
    w?.resolve(Number(res.TTL));
  }

  private fail(err: unknown): void {
    const all = [...this.waiting.values()].flat();
    this.waiting.clear();
    for (const w of all) w.reject(err);
    const s = this.stream;
    this.stream = null;
    if (this.closed) void s?.then((x) => x.cancel()).catch(() => {});
  }
}

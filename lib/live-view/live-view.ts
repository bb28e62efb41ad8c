/**
 * The live view: a Doozer client of a store, and a small HTTP server that
 * shows the store tree and every election on one page, updated live with
 * server-sent events. See docs/live-view.md.
 */
import { DoozerClient, formatAddress } from '../doozer/index.js';
import { isWildcardHost } from '../net/listen.js';
import { loadAssets } from './assets.js';
import { StoreFollower } from './follower.js';
import { LiveViewHttp } from './http.js';
import { SseHub, sseEvent } from './sse.js';
import { LiveState, type LiveMessage, type SnapshotMessage } from './state.js';

/** Options of {@link LiveView.start}. */
export interface LiveViewOptions {
  /** The store to show: a Doozer URI (`doozer:?ca=HOST:PORT`, with `sk=` for a secret; the view only reads). */
  uri: string;
  /** Boot URI to resolve a `cn=` cluster name (as for `DoozerClient.connect`). */
  bootUri?: string;
  /** Address to listen on. Default `'127.0.0.1'`; a wildcard (`0.0.0.0`, `::`) is warned about. */
  host?: string;
  /** Port; `0` (the default) picks a free one. */
  port?: number;
  /** Most files of the tree shown. Default 5000. */
  maxFiles?: number;
  /** Largest value shown; a larger one shows as "(n bytes)". Default 1024. */
  maxValueBytes?: number;
  /** Most elections tracked. Default 1000. */
  maxElections?: number;
  /** Timeline entries (terms and gaps) kept per election. Default 100. */
  maxTimeline?: number;
  /** Event streams (open pages) at once; more answer 503. Default 16. */
  maxClients?: number;
  /** Unread bytes a page's stream may hold before it is dropped. Default 4 MiB. */
  maxBufferedBytes?: number;
  /** Period of the streams' heartbeat. Default 15000 ms. */
  heartbeatMs?: number;
  /** Changes are sent to the pages at most this often. Default 100 ms. */
  flushMs?: number;
  /** `warn`: a wildcard bind, a lost connection to the store. Never a secret. Default silent. */
  logger?: { warn?(message: string): void };
}

type Resolved = Required<Omit<LiveViewOptions, 'bootUri' | 'logger'>> &
  Pick<LiveViewOptions, 'bootUri' | 'logger'>;

const DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  maxFiles: 5000,
  maxValueBytes: 1024,
  maxElections: 1000,
  maxTimeline: 100,
  maxClients: 16,
  maxBufferedBytes: 4 * 1024 * 1024,
  heartbeatMs: 15_000,
  flushMs: 100,
} as const;

function resolve(o: LiveViewOptions): Resolved {
  const r = { ...DEFAULTS, ...o };
  for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
    if (key === 'host') continue;
    const v = r[key];
    const min = key === 'port' ? 0 : 1;
    if (!Number.isSafeInteger(v) || v < min || (key === 'port' && v > 65535)) {
      throw new RangeError(
        `live view option ${key} must be an integer >= ${min}, got ${String(v)}`,
      );
    }
  }
  if (typeof r.host !== 'string' || r.host === '') {
    throw new RangeError('live view option host must be a host name or an IP address');
  }
  return r;
}

/** The viewer's clock: ms since the epoch, advancing monotonically (a wall-clock step does not move it). */
const viewerNow = (): number => performance.timeOrigin + performance.now();

export class LiveView {
  #closing: Promise<void> | undefined;

  private constructor(
    private readonly client: DoozerClient,
    private readonly state: LiveState,
    private readonly follower: StoreFollower,
    private readonly hub: SseHub,
    private readonly http: LiveViewHttp,
  ) {}

  /**
   * Connects to the store, reads it, and listens. Resolves once the page can
   * be loaded.
   *
   * @throws {RangeError} an option is out of range (it is named).
   * @throws the client's errors when the store cannot be reached (see `DoozerClient.connect`),
   *   or the listener's (`EADDRINUSE`, ...) when the address cannot be bound.
   */
  static async start(options: LiveViewOptions): Promise<LiveView> {
    const o = resolve(options);
    const warn = (m: string): void => o.logger?.warn?.(`live view: ${m}`);
    const assets = await loadAssets();
    const hub = new SseHub({
      maxClients: o.maxClients,
      heartbeatMs: o.heartbeatMs,
      maxBufferedBytes: o.maxBufferedBytes,
      retryMs: 2000,
    });
    const publish = (m: LiveMessage): void => hub.broadcast(m.event, m.data);
    const state = new LiveState(o, viewerNow, publish, o.flushMs);
    let client: DoozerClient | undefined;
    let follower: StoreFollower | undefined;
    try {
      client = await DoozerClient.connect(o.uri, { bootUri: o.bootUri });
      follower = new StoreFollower(client, state, warn);
      await follower.start();
      const http = await LiveViewHttp.listen({
        host: o.host,
        port: o.port,
        assets,
        hub,
        snapshotEvent: () => sseEvent('snapshot', state.snapshot()),
        stateJson: () => JSON.stringify(state.snapshot()),
        maxConnections: 2 * o.maxClients + 16,
      });
      const view = new LiveView(client, state, follower, hub, http);
      if (isWildcardHost(view.host)) {
        warn(
          `listening on the wildcard address ${view.host}: every network this machine is on can ` +
            `read the store through ${view.url} (it has no access control); bind 127.0.0.1 unless you mean it`,
        );
      }
      return view;
    } catch (e) {
      hub.close();
      state.close();
      await follower?.close();
      await client?.close();
      throw e;
    }
  }

  /** The address the page is served on. */
  get host(): string {
    return this.http.bound.host;
  }

  get port(): number {
    return this.http.bound.port;
  }

  /** `host:port` (IPv6 bracketed). */
  get address(): string {
    return formatAddress(this.http.bound);
  }

  /** The page's URL. A wildcard bind is shown as the loopback address of its family. */
  get url(): string {
    const { host, port } = this.http.bound;
    const dial = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
    return `http://${formatAddress({ host: dial, port })}/`;
  }

  /** What the page would get now (the same as `GET /state`). */
  snapshot(): SnapshotMessage {
    return this.state.snapshot();
  }

  /** Open event streams, streams dropped for not reading, files and elections kept. */
  stats(): { clients: number; droppedClients: number; files: number; elections: number } {
    return { clients: this.hub.clients, droppedClients: this.hub.dropped, ...this.state.stats() };
  }

  /** Stops serving, ends the pages' streams, stops following and closes the client. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.state.close();
      this.hub.close();
      await this.http.close();
      await this.follower.close();
      await this.client.close();
    })();
    return this.#closing;
  }
}

/**
 * The embedded, single-process, in-memory Doozer-compatible server: one
 * node, no persistence, no consensus, the client protocol of doozerd
 * 0.9.0-alpha. For development, tests and demos.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { isWildcardHost } from '../net/listen.js';
import { WriteBudget } from './answer-writer.js';
import { Connection, type ConnectionHost } from './connection.js';
import { Engine } from './engine.js';
import { randomNodeId, resolve, type DoozerServerOptions, type Resolved } from './options.js';
import { CLOBBER, storedBytes, type Body } from './store.js';

export type { DoozerServerOptions } from './options.js';

/** What {@link DoozerServer.stats} reports. */
export interface DoozerServerStats {
  /** The current store rev. */
  readonly rev: number;
  /** Open client connections. */
  readonly connections: number;
  /** Requests (WAITs, reads at a future rev) waiting for a write, or answered by one and not yet written. */
  readonly waiting: number;
  /** Request frames received but held back (server paused, or a client not reading). */
  readonly queuedFrames: number;
  /** Answer bytes waiting in the sockets' write buffers. */
  readonly bufferedBytes: number;
  /**
   * Memory those answers hold: shared values counted once (what
   * `maxTotalWriteBufferBytes` bounds).
   */
  readonly heldAnswerBytes: number;
  /** Requests decoded and handled since the server object was created (across restarts). */
  readonly requests: number;
  /** Files in the store. */
  readonly files: number;
  /** Revs held in history. */
  readonly historyEvents: number;
}

/** The version string the server stores in `/ctl/node/<id>/version`. */
export const EMBEDDED_SERVER_VERSION = '0.9.0-alpha (nestjs-master-election embedded server)';

/** NOPs a fresh doozerd node writes after its first /ctl files ("alpha"). */
const BOOT_NOPS = 50;
const RETRY_LISTEN_MS = 5000;

/**
 * An embedded Doozer server. Start one with {@link DoozerServer.start}, point
 * a client at {@link DoozerServer.uri}, and {@link DoozerServer.close} it when
 * done. It also injects faults for tests: {@link pause}, {@link
 * dropConnections}, {@link stop} and {@link restart}.
 */
export class DoozerServer {
  private server: Server | null = null;
  private engine!: Engine;
  private readonly conns = new Set<Connection>();
  private heartbeat: NodeJS.Timeout | null = null;
  private isPaused = false;
  private closing: Promise<void> | null = null;
  /** stop(), restart() and close() run one after the other, in call order. */
  private lifecycle: Promise<unknown> = Promise.resolve();
  private boundHost: string;
  private boundPort: number;
  private currentNodeId = '';
  private readonly counters = { requests: 0 };
  private readonly budget: WriteBudget;
  private readonly host_: ConnectionHost;

  private constructor(private readonly opts: Resolved) {
    this.boundHost = opts.host;
    this.boundPort = opts.port;
    this.budget = new WriteBudget(opts.maxTotalWriteBufferBytes);
    this.host_ = {
      isPaused: () => this.isPaused,
      counters: this.counters,
      maxFrameBytes: opts.maxFrameBytes,
      maxWriteBufferBytes: opts.maxWriteBufferBytes,
      maxWaiting: opts.maxWaiting,
      budget: this.budget,
      overBudget: () => this.shed(),
      warn: (m) => opts.logger.warn?.(m),
      closed: (c) => this.conns.delete(c),
    };
  }

  /** Starts a server with a fresh store and resolves once it listens. */
  static async start(options: DoozerServerOptions = {}): Promise<DoozerServer> {
    const server = new DoozerServer(resolve(options));
    await server.listen(false);
    server.fresh();
    server.startHeartbeat();
    const { logger, advertiseHost } = server.opts;
    logger.info?.(`doozer server listening on ${server.address} uri=${server.uri}`);
    if (advertiseHost === undefined && isWildcardHost(server.boundHost)) {
      logger.warn?.(
        `listening on the wildcard address ${server.boundHost}, which clients cannot dial, ` +
          `yet the uri and /ctl/ns advertise ${server.address}: set advertiseHost ` +
          `(doozer-dev-server --advertise-host) to the address clients should use`,
      );
    }
    return server;
  }

  /** `doozer:?ca=HOST:PORT`, the URI a client connects with (IPv6 hosts bracketed). */
  get uri(): string {
    return `doozer:?ca=${this.address}`;
  }

  /**
   * `HOST:PORT` as stored in `/ctl/ns/<cluster>/<node id>` (IPv6 hosts
   * bracketed): `advertiseHost`, or else the bound address, with the bound port.
   */
  get address(): string {
    const advertised = this.opts.advertiseHost ?? this.boundHost;
    const host = advertised.includes(':') ? `[${advertised}]` : advertised;
    return `${host}:${this.boundPort}`;
  }

  /** The address the server is bound to. */
  get host(): string {
    return this.boundHost;
  }

  /** The port the server is bound to (kept across {@link stop} and {@link restart}). */
  get port(): number {
    return this.boundPort;
  }

  /** The node id SELF answers (a new one after a restart without state, unless `nodeId` was given). */
  get nodeId(): string {
    return this.currentNodeId;
  }

  /** The current store rev. */
  get rev(): number {
    return this.engine.store.rev;
  }

  /** Open client connections. */
  get connections(): number {
    return this.conns.size;
  }

  /** Requests (WAITs, reads at a future rev) waiting for a write, or answered by one and not yet written. */
  get waiting(): number {
    return this.engine.waiting;
  }

  /** Counters for tests, diagnostics and the benchmark. */
  stats(): DoozerServerStats {
    let queuedFrames = 0;
    let bufferedBytes = 0;
    for (const c of this.conns) {
      queuedFrames += c.queuedFrames;
      bufferedBytes += c.bufferedBytes;
    }
    const store = this.engine.store.stats;
    return {
      rev: this.rev,
      connections: this.conns.size,
      waiting: this.engine.waiting,
      queuedFrames,
      bufferedBytes,
      heldAnswerBytes: this.budget.bytes,
      requests: this.counters.requests,
      files: store.files,
      historyEvents: store.historyEvents,
    };
  }

  /** True between {@link pause} and {@link resume}. */
  get paused(): boolean {
    return this.isPaused;
  }

  /**
   * Stops reading and answering, keeping every socket open, as a hung
   * server would; the heartbeat stops too. Requests sent meanwhile are
   * processed, in order, on {@link resume}. {@link stop}, {@link restart}
   * and {@link close} end the pause (a restarted process is not hung).
   */
  pause(): void {
    this.isPaused = true;
  }

  /** Undoes {@link pause}: processes what queued up and answers again. */
  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    for (const c of [...this.conns]) c.pump(true);
  }

  /** Destroys every client socket now (their waiting requests are freed); keeps listening. */
  dropConnections(): void {
    for (const c of [...this.conns]) c.destroy();
  }

  /**
   * Stops listening and drops every connection; the store is kept for
   * {@link restart}. A stopped process is not a hung one: it also ends a
   * {@link pause}. Waits for a {@link restart} in flight first.
   */
  stop(): Promise<void> {
    return this.serially(() => this.stopNow());
  }

  /**
   * Listens again on the same port. With `keepState: true` the store (and
   * node id) survive, like a paused process; by default the node comes back
   * empty, as a restarted doozerd does (it has no persistence): a fresh
   * store at about rev 58 and a new node id. Either way the node comes back
   * answering, with its heartbeat: a restart ends a {@link pause}.
   */
  restart(options: { keepState?: boolean } = {}): Promise<void> {
    if (this.closing) return Promise.reject(new Error('DoozerServer is closed'));
    return this.serially(async () => {
      await this.stopNow();
      if (!options.keepState) {
        this.engine.dispose();
        this.fresh(); // same port, so the /ctl files can name the address before listening
      }
      await this.listen(true);
      this.startHeartbeat();
    });
  }

  /**
   * Stops everything and frees the store, timers and sockets. Idempotent.
   * A {@link restart} in flight finishes first, so no listener outlives it.
   */
  close(): Promise<void> {
    this.closing ??= this.serially(async () => {
      await this.stopNow();
      this.engine.dispose();
    });
    return this.closing;
  }

  /** Closes the connections with the most unwritten answers until the budget holds again. */
  private shed(): void {
    const { budget } = this;
    while (budget.exceeded) {
      let slowest: Connection | undefined;
      for (const c of this.conns) if (c.unwritten > (slowest?.unwritten ?? 0)) slowest = c;
      if (!slowest) return;
      slowest.close(
        `the server holds more than ${budget.limit} bytes of unread answers ` +
          `(maxTotalWriteBufferBytes), the most of them for this connection (${slowest.unwritten} bytes)`,
      );
    }
  }

  /** Runs `step` once every earlier stop/restart/close has settled. */
  private serially(step: () => Promise<void>): Promise<void> {
    const run = this.lifecycle.then(step);
    this.lifecycle = run.catch(() => undefined);
    return run;
  }

  private async stopNow(): Promise<void> {
    this.stopHeartbeat();
    this.isPaused = false;
    const server = this.server;
    this.server = null;
    this.dropConnections();
    if (server) await new Promise<void>((done) => server.close(() => done()));
  }

  private async listen(samePort: boolean): Promise<void> {
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket));
    const started = Date.now();
    for (;;) {
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(
            { host: this.opts.host, port: samePort ? this.boundPort : this.opts.port },
            () => {
              server.off('error', reject);
              resolve();
            },
          );
        });
        break;
      } catch (e) {
        // The port of a server that just closed can take a moment to free.
        const code = (e as NodeJS.ErrnoException).code;
        if (!samePort || code !== 'EADDRINUSE' || Date.now() - started > RETRY_LISTEN_MS) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const addr = server.address();
    if (addr && typeof addr === 'object') {
      this.boundHost = addr.address;
      this.boundPort = addr.port;
    }
    this.server = server;
  }

  private accept(socket: Socket): void {
    if (!this.server || this.closing || !this.engine) {
      socket.destroy();
      return;
    }
    const conn = new Connection(this.host_, this.engine, socket);
    this.conns.add(conn);
  }

  /** A new node: a fresh store with the /ctl files doozerd writes when it starts a cluster. */
  private fresh(): void {
    const o = this.opts;
    this.currentNodeId = o.nodeId ?? randomNodeId();
    this.engine = new Engine({
      history: o.history,
      nodeId: this.currentNodeId,
      rwSecret: o.rwSecret,
      roSecret: o.roSecret,
      checkTags: o.checkTags,
      maxPathBytes: o.maxPathBytes,
      maxPathDepth: o.maxPathDepth,
    });
    const store = this.engine.store;
    const node = `/ctl/node/${this.currentNodeId}`;
    const text = (s: string): Body => storedBytes(Buffer.from(s));
    store.set('/ctl/name', 0, text(o.clusterName));
    store.set(`${node}/addr`, 0, text(this.address));
    store.set(`${node}/hostname`, 0, text(safeHostname()));
    store.set(`${node}/version`, 0, text(EMBEDDED_SERVER_VERSION));
    store.set('/ctl/cal/0', 0, text(this.currentNodeId));
    store.set(`/ctl/ns/${o.clusterName}/${this.currentNodeId}`, 0, text(this.address));
    for (let i = 0; i < BOOT_NOPS; i++) store.nop();
    store.set(`${node}/writable`, 0, text('true'));
    this.beat();
  }

  /** One heartbeat: `/ctl/node/<id>/applied` = the rev before it, unconditionally. */
  private beat(): void {
    const store = this.engine.store;
    store.set(`/ctl/node/${this.currentNodeId}/applied`, CLOBBER, String(store.rev));
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    if (this.opts.heartbeatMs <= 0) return;
    this.heartbeat = setInterval(() => {
      if (!this.isPaused) this.beat();
    }, this.opts.heartbeatMs);
    this.heartbeat.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }
}

function safeHostname(): string {
  try {
    return hostname();
  } catch {
    return 'unknown';
  }
}

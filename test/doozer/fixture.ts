/**
 * A tiny raw-socket Doozer server for frame-level tests of the client: it
 * decodes Request frames with lib/wire and lets the test answer them by hand
 * (in any order, split, coalesced, garbled) or through an auto-answer hook.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import {
  FrameDecoder,
  RequestSchema,
  ResponseSchema,
  encodeFrame,
  type Request,
} from '../../lib/wire/index.js';

export type ResponseInit = MessageInitShape<typeof ResponseSchema>;

/** Generous limit for waiting on an event in tests. */
export const WAIT_MS = 15_000;

/** A FIFO whose `shift()` waits for the next item. */
export class AsyncQueue<T> {
  private readonly items: T[] = [];
  private readonly waiters: ((item: T) => void)[] = [];

  push(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }

  get size(): number {
    return this.items.length;
  }

  shift(what = 'item', timeoutMs = WAIT_MS): Promise<T> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift() as T);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(deliver);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const deliver = (item: T): void => {
        clearTimeout(timer);
        resolve(item);
      };
      this.waiters.push(deliver);
    });
  }
}

/** Encodes one Response frame. */
export function responseFrame(init: ResponseInit): Buffer {
  return encodeFrame(toBinary(ResponseSchema, create(ResponseSchema, init)));
}

/** One accepted client connection. */
export class RawConn {
  /** Every request received, in order. */
  readonly received: Request[] = [];
  /** Requests not auto-answered, for the test to take with `next()`. */
  readonly inbox = new AsyncQueue<Request>();
  /** Resolves when the socket closed. */
  readonly closed: Promise<void>;
  /** Number of 'data' chunks received. */
  chunks = 0;
  private readonly decoder = new FrameDecoder();
  private readonly countWaiters: { n: number; resolve: () => void }[] = [];

  constructor(
    readonly socket: Socket,
    private readonly auto: AutoAnswer | undefined,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      this.chunks++;
      this.decoder.push(chunk, (payload) => this.onRequest(fromBinary(RequestSchema, payload)));
    });
  }

  private onRequest(req: Request): void {
    this.received.push(req);
    for (const w of [...this.countWaiters]) {
      if (this.received.length >= w.n) {
        this.countWaiters.splice(this.countWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
    const answer = this.auto?.(req, this);
    if (answer === undefined) this.inbox.push(req);
    else if (answer !== null) this.reply(req, answer);
  }

  /** The next request that was not auto-answered. */
  next(): Promise<Request> {
    return this.inbox.shift('a request');
  }

  /** Resolves once `n` requests in total have been received. */
  receivedCount(n: number, timeoutMs = WAIT_MS): Promise<void> {
    if (this.received.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`timed out waiting for ${n} requests (got ${this.received.length})`)),
        timeoutMs,
      );
      this.countWaiters.push({
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  /** Answers `req` (or a bare tag) with `fields`. */
  reply(req: Request | number, fields: ResponseInit = {}): void {
    const tag = typeof req === 'number' ? req : req.tag;
    this.socket.write(responseFrame({ ...fields, tag }));
  }

  /** Writes raw bytes. */
  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Destroys the socket (RST-free close from the server side). */
  drop(): void {
    this.socket.destroy();
  }
}

/**
 * Answers a request automatically: a Response init, `null` to swallow it,
 * or `undefined` to leave it in the connection's inbox.
 */
export type AutoAnswer = (req: Request, conn: RawConn) => ResponseInit | null | undefined;

export class RawServer {
  readonly connections = new AsyncQueue<RawConn>();
  readonly all: RawConn[] = [];
  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly host: string,
  ) {}

  /** Starts a fixture on `host` (default 127.0.0.1), port 0. */
  static async start(auto?: AutoAnswer, host = '127.0.0.1'): Promise<RawServer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    const fixture = new RawServer(server, (server.address() as AddressInfo).port, host);
    server.on('connection', (socket) => {
      const conn = new RawConn(socket, auto);
      fixture.all.push(conn);
      fixture.connections.push(conn);
    });
    return fixture;
  }

  /** `HOST:PORT` (`[v6]:PORT` for IPv6). */
  get address(): string {
    return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  /** `doozer:?ca=HOST:PORT` plus `extra` query text. */
  uri(extra = ''): string {
    return `doozer:?ca=${this.address}${extra}`;
  }

  /** The next accepted connection. */
  nextConnection(): Promise<RawConn> {
    return this.connections.shift('a connection');
  }

  /** Stops listening and destroys every connection. */
  async close(): Promise<void> {
    for (const c of this.all) c.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all(this.all.map((c) => c.closed));
  }
}

/** A loopback port that refuses connections (a server was bound there and closed). */
export async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

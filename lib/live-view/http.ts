/**
 * The live view's HTTP server (`node:http`): the page's three files, the
 * event stream (`/events`) and the state as JSON (`/state`). Read-only: GET
 * and HEAD only, anything else is 405. Every answer carries a strict
 * Content-Security-Policy (`default-src 'self'`: no inline script, no
 * other origin). Bound to a loopback address, it answers only requests
 * whose Host is a loopback name, so a web page elsewhere cannot read it
 * through DNS rebinding.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { isLoopbackHost } from '../net/listen.js';
import type { Asset } from './assets.js';
import { SseHub } from './sse.js';

/** Headers of every answer. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
};

export interface HttpOptions {
  readonly host: string;
  readonly port: number;
  readonly assets: Map<string, Asset>;
  readonly hub: SseHub;
  /** The first event of a new stream (the snapshot), in SSE format. */
  readonly snapshotEvent: () => string;
  /** The state as JSON (for `/state`). */
  readonly stateJson: () => string;
  /** Connections open at once; Node closes any more at once. */
  readonly maxConnections: number;
}

/** The Host header's host name, without the port or IPv6 brackets. */
function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d+)?$/.exec(header);
  return m ? (m[1] ?? m[2]) : undefined;
}

export class LiveViewHttp {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #loopbackOnly: boolean;

  private constructor(
    private readonly opts: HttpOptions,
    server: Server,
  ) {
    this.#server = server;
    this.#loopbackOnly = isLoopbackHost(opts.host);
  }

  /** Listens; rejects when the address cannot be bound. */
  static async listen(opts: HttpOptions): Promise<LiveViewHttp> {
    const server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000 });
    const http = new LiveViewHttp(opts, server);
    server.maxConnections = opts.maxConnections;
    server.keepAliveTimeout = 5_000;
    server.on('request', (req, res) => http.#handle(req, res));
    server.on('connection', (s) => {
      http.#sockets.add(s);
      s.once('close', () => http.#sockets.delete(s));
    });
    server.on('clientError', (_e, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: opts.host, port: opts.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return http;
  }

  /** The bound address and port. */
  get bound(): { host: string; port: number } {
    const a = this.#server.address();
    return a && typeof a === 'object'
      ? { host: a.address, port: a.port }
      : { host: this.opts.host, port: this.opts.port };
  }

  /** Stops listening and closes every connection (event streams included). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return this.#text(
        req,
        res,
        405,
        `${req.method ?? 'this method'} is not allowed: the live view is read-only\n`,
        {
          allow: 'GET, HEAD',
        },
      );
    }
    if (this.#loopbackOnly && !isLoopbackHost(hostName(req.headers.host) ?? '')) {
      return this.#text(req, res, 403, 'the live view answers only to a loopback host name\n');
    }
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/events') {
      return this.opts.hub.accept(req, res, SECURITY_HEADERS, this.opts.snapshotEvent);
    }
    if (path === '/state') {
      return this.#send(
        req,
        res,
        200,
        'application/json; charset=utf-8',
        Buffer.from(this.opts.stateJson()),
      );
    }
    const asset = this.opts.assets.get(path);
    if (asset) return this.#send(req, res, 200, asset.type, asset.body);
    this.#text(req, res, 404, 'not found\n');
  }

  #text(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    text: string,
    extra: Record<string, string> = {},
  ): void {
    this.#send(req, res, status, 'text/plain; charset=utf-8', Buffer.from(text), extra);
  }

  #send(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    type: string,
    body: Buffer,
    extra: Record<string, string> = {},
  ): void {
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'content-type': type,
      'content-length': body.byteLength,
      'cache-control': 'no-cache',
      ...extra,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

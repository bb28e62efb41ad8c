/**
 * The pages' server-sent event streams: at most `maxClients` at once, a
 * heartbeat comment every `heartbeatMs` (so a dead client's socket fails and
 * is dropped, and proxies keep the stream open), and a client whose unread
 * answers pass `maxBufferedBytes` is dropped (its browser reconnects and gets
 * a fresh snapshot), so a slow or stuck page costs bounded memory.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface SseOptions {
  readonly maxClients: number;
  readonly heartbeatMs: number;
  readonly maxBufferedBytes: number;
  /** How long a browser waits before it reconnects a broken stream. */
  readonly retryMs: number;
}

/** One event in the SSE wire format; `data` is JSON, so it holds no newline. */
export function sseEvent(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

interface Client {
  readonly res: ServerResponse;
  /** Bytes of the first write (the snapshot), which the buffer bound does not count. */
  readonly initialBytes: number;
}

export class SseHub {
  readonly #clients = new Set<Client>();
  readonly #heartbeat: ReturnType<typeof setInterval>;
  #dropped = 0;

  constructor(private readonly opts: SseOptions) {
    this.#heartbeat = setInterval(() => this.#send(': heartbeat\n\n'), opts.heartbeatMs);
  }

  /** Streams currently open. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Streams dropped for not reading. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Opens a stream for `req` and writes `initial()` (the snapshot) first, or
   * answers 503 when `maxClients` streams are open.
   */
  accept(
    req: IncomingMessage,
    res: ServerResponse,
    headers: Record<string, string>,
    initial: () => string,
  ): void {
    if (this.#clients.size >= this.opts.maxClients) {
      const body = `too many live view streams open (at most ${this.opts.maxClients})\n`;
      res.writeHead(503, {
        ...headers,
        'content-type': 'text/plain; charset=utf-8',
        'content-length': Buffer.byteLength(body),
        'retry-after': '5',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    req.socket.setNoDelay(true);
    const first = `retry: ${this.opts.retryMs}\n\n${initial()}`;
    const client: Client = { res, initialBytes: Buffer.byteLength(first) };
    this.#clients.add(client);
    res.once('close', () => this.#clients.delete(client));
    res.write(first);
  }

  /** Sends one event to every stream. */
  broadcast(event: string, data: unknown): void {
    if (this.#clients.size > 0) this.#send(sseEvent(event, data));
  }

  /** Ends every stream and the heartbeat. */
  close(): void {
    clearInterval(this.#heartbeat);
    for (const c of this.#clients) c.res.end();
    this.#clients.clear();
  }

  #send(chunk: string): void {
    for (const c of this.#clients) {
      if (c.res.writableLength > c.initialBytes + this.opts.maxBufferedBytes) {
        this.#dropped++;
        this.#clients.delete(c);
        c.res.destroy();
        continue;
      }
      c.res.write(chunk);
    }
  }
}

/**
 * Helpers of the live view's suites: an embedded server with a live view on
 * it (both closed when the test finishes), plain HTTP requests, and a reader
 * of the event stream.
 */
import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { onTestFinished } from 'vitest';
import { DoozerClient } from '../../lib/doozer/index.js';
import { LiveView, type LiveViewOptions } from '../../lib/live-view/index.js';
import type { SnapshotMessage, UpdateMessage } from '../../lib/live-view/index.js';
import { DoozerServer, type DoozerServerOptions } from '../../lib/testing/index.js';
import { waitFor } from '../support/wait.js';

export interface Stack {
  server: DoozerServer;
  view: LiveView;
  /** A client of the same store, for the test's own writes. */
  client: DoozerClient;
  warnings: string[];
}

/** A server, a live view of it and a client, all closed when the test finishes. */
export async function startStack(
  view: Partial<LiveViewOptions> = {},
  server: DoozerServerOptions = {},
): Promise<Stack> {
  const s = await DoozerServer.start(server);
  onTestFinished(() => s.close());
  const warnings: string[] = [];
  const v = await LiveView.start({
    uri: s.uri,
    flushMs: 10,
    logger: { warn: (m) => warnings.push(m) },
    ...view,
  });
  onTestFinished(() => v.close());
  const client = await DoozerClient.connect(s.uri);
  onTestFinished(() => client.close());
  return { server: s, view: v, client, warnings };
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTP request to the live view; the whole answer. */
export function fetchText(
  url: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: options.method ?? 'GET', headers: options.headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

export interface SseEvent {
  event: string;
  data: unknown;
}

/** Reads `/events` and parses what arrives. */
export class SseReader {
  readonly events: SseEvent[] = [];
  comments = 0;
  closed = false;

  private constructor(
    readonly res: IncomingMessage,
    private readonly destroy: () => void,
  ) {
    let buffer = '';
    res.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        this.#block(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    });
    res.on('close', () => (this.closed = true));
  }

  /** Opens the stream; resolves with the reader once the answer's head is in. */
  static open(url: string): Promise<SseReader> {
    return new Promise((resolve, reject) => {
      const req = request(new URL('events', url), (res) => {
        const reader = new SseReader(res, () => req.destroy());
        onTestFinished(() => reader.close());
        resolve(reader);
      });
      req.on('error', reject);
      req.end();
    });
  }

  close(): void {
    this.destroy();
  }

  /** The first snapshot. */
  async snapshot(): Promise<SnapshotMessage> {
    return (await this.next('snapshot', () => true, 'the snapshot')) as SnapshotMessage;
  }

  /** Waits for an update whose data satisfies `match` (checking those already received too). */
  async update(match: (u: UpdateMessage) => boolean, what: string): Promise<UpdateMessage> {
    return (await this.next('update', (d) => match(d as UpdateMessage), what)) as UpdateMessage;
  }

  async next(event: string, match: (data: unknown) => boolean, what: string): Promise<unknown> {
    let found: SseEvent | undefined;
    await waitFor(() => {
      found = this.events.find((e) => e.event === event && match(e.data));
      return found !== undefined;
    }, what);
    return found!.data;
  }

  #block(block: string): void {
    let event = 'message';
    let data: string | undefined;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) this.comments++;
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data = line.slice(6);
    }
    if (data !== undefined) this.events.push({ event, data: JSON.parse(data) });
  }
}

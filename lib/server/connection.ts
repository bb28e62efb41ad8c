/**
 * One client connection of the embedded server: framing, decoding, the
 * order of processing, back-pressure and clean-up. What a request means is
 * the {@link Engine}'s business.
 */
import type { Socket } from 'node:net';
import { create, fromBinary } from '@bufbuild/protobuf';
import { Err, FrameDecoder, FrameError, RequestSchema, type Response } from '../wire/index.js';
import { AnswerWriter, type WriteBudget } from './answer-writer.js';
import { respond, type Engine, type Session } from './engine.js';
import { inspectRequest, MAX_REQUEST_FIELDS, pathTooLong } from './request-limits.js';
import type { Waiter } from './waiters.js';

/**
 * Stop reading a socket while more than this many bytes wait to be written
 * to it (or a quarter of the connection's write buffer limit, if smaller).
 */
export const WRITE_HIGH_WATER = 1024 * 1024;
/**
 * Most requests one connection may have waiting (WAITs, future-rev reads).
 * A client past it is disconnected like one sending oversize frames: the
 * protocol has no error for it, and the server's memory is everyone's.
 */
export const MAX_PENDING_PER_CONNECTION = 100_000;

/** What a connection needs from its server. */
export interface ConnectionHost {
  /** True while the server is paused: nothing is processed. */
  isPaused(): boolean;
  /** Server-wide counters this connection adds to. */
  readonly counters: { requests: number };
  readonly maxFrameBytes: number;
  /** Past this many unwritten answer bytes the connection is closed. */
  readonly maxWriteBufferBytes: number;
  /** Past this many waiting requests server-wide, the connection that adds one is closed. */
  readonly maxWaiting: number;
  /** What unwritten answers hold server-wide. */
  readonly budget: WriteBudget;
  /** Called when {@link budget} is exceeded: close connections until it is not. */
  overBudget(): void;
  warn(message: string): void;
  closed(connection: Connection): void;
}

/** A client connection. */
export class Connection implements Session {
  raccess = false;
  waccess = false;
  readonly pending = new Set<Waiter>();
  readonly pendingTags = new Set<number>();
  private readonly decoder: FrameDecoder;
  /** Frames received but not processed yet (server paused or write buffer full). */
  private readonly queue: Uint8Array[] = [];
  private queueHead = 0;
  private writeBlocked = false;
  private done = false;
  private readonly peer: string;
  private readonly highWater: number;
  private readonly writer: AnswerWriter;

  constructor(
    private readonly host: ConnectionHost,
    private readonly engine: Engine,
    readonly socket: Socket,
  ) {
    this.decoder = new FrameDecoder(host.maxFrameBytes);
    this.highWater = Math.min(WRITE_HIGH_WATER, Math.floor(host.maxWriteBufferBytes / 4));
    this.peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.writer = new AnswerWriter(socket, host.budget);
    socket.setNoDelay(true);
    engine.open(this);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('drain', () => {
      this.writeBlocked = false;
      this.pump();
    });
    socket.on('error', () => {}); // 'close' follows; a reset client is not news
    socket.on('close', () => this.cleanup());
    this.updateReading();
  }

  /** Frames received and held back (server paused, or the client not reading its answers). */
  get queuedFrames(): number {
    return this.queue.length - this.queueHead;
  }

  /** Bytes of answers waiting in the socket's write buffer. */
  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  /** Answer bytes written and not yet handed to the kernel (shared values in full). */
  get unwritten(): number {
    return this.writer.unwritten;
  }

  /**
   * Sends one response (dropped once the connection is closing). Answers
   * that come due on their own (WAITs, future-rev reads) are written even
   * while reading is paused, so a client that never reads is closed once
   * its unwritten answers pass the limit.
   */
  reply(response: Response): void {
    if (this.done || !this.socket.writable) return;
    this.writer.write(response);
    const buffered = this.socket.writableLength;
    if (buffered > this.host.maxWriteBufferBytes) {
      this.fail(`more than ${this.host.maxWriteBufferBytes} bytes of answers not read`);
      return;
    }
    if (this.host.budget.exceeded) {
      this.host.overBudget();
      if (this.done) return;
    }
    if (!this.writeBlocked && buffered > this.highWater) {
      this.writeBlocked = true;
      this.updateReading();
    }
  }

  /** Processes what was held back while the server was paused. */
  pump(): void {
    if (this.done) return;
    this.socket.cork();
    try {
      while (this.queueHead < this.queue.length && this.canProcess()) {
        const frame = this.queue[this.queueHead]!;
        this.queue[this.queueHead++] = undefined as unknown as Uint8Array;
        this.process(frame);
      }
      if (this.queueHead === this.queue.length) {
        this.queue.length = 0;
        this.queueHead = 0;
      }
    } finally {
      this.socket.uncork();
    }
    this.updateReading();
  }

  /** Closes the connection for `reason`, with one `warn` line. */
  close(reason: string): void {
    this.fail(reason);
  }

  /** Destroys the socket now; what it waited for is freed. */
  destroy(): void {
    this.cleanup();
    this.socket.destroy();
  }

  private canProcess(): boolean {
    return !this.done && !this.host.isPaused() && !this.writeBlocked;
  }

  private updateReading(): void {
    if (this.done) return;
    const read = this.canProcess() && this.queueHead === this.queue.length;
    if (read && this.socket.isPaused()) this.socket.resume();
    else if (!read && !this.socket.isPaused()) this.socket.pause();
  }

  private onData(chunk: Buffer): void {
    this.socket.cork();
    try {
      this.decoder.push(chunk, (frame) => {
        if (this.done) return;
        if (this.queueHead === this.queue.length && this.canProcess()) this.process(frame);
        else this.queue.push(new Uint8Array(frame)); // the frame may be a view into `chunk`
      });
    } catch (e) {
      if (!(e instanceof FrameError)) throw e;
      this.fail(e.message);
    } finally {
      this.socket.uncork();
    }
    this.updateReading();
  }

  private onEnd(): void {
    try {
      this.decoder.end();
    } catch (e) {
      if (e instanceof FrameError) this.fail(e.message);
      else throw e;
    }
    // The client will not read what it still waits for: free it now.
    this.cleanup();
  }

  private process(frame: Uint8Array): void {
    // Refuse what would cost the decoder in proportion to the frame's size.
    const shape = inspectRequest(frame);
    if (shape.tooManyFields) {
      this.fail(`request of ${frame.length} bytes has more than ${MAX_REQUEST_FIELDS} fields`);
      return;
    }
    const { limits } = this.engine;
    if (shape.pathBytes > limits.maxPathBytes) {
      this.host.counters.requests++;
      const req = create(RequestSchema, shape.tag === undefined ? {} : { tag: shape.tag });
      const errDetail = pathTooLong(shape.pathBytes, limits);
      this.reply(respond(req, { errCode: Err.BAD_PATH, errDetail }));
      return;
    }
    let request;
    try {
      request = fromBinary(RequestSchema, frame, { readUnknownFields: false });
    } catch (e) {
      this.fail(`undecodable request of ${frame.length} bytes (${(e as Error).message})`);
      return;
    }
    this.host.counters.requests++;
    const waitingBefore = this.pending.size;
    try {
      this.engine.handle(this, request);
    } catch (e) {
      // A bug must cost this client its connection, not the server its process.
      this.fail(`internal error: ${(e as Error).message}`);
      return;
    }
    if (this.pending.size > MAX_PENDING_PER_CONNECTION) {
      this.fail(`more than ${MAX_PENDING_PER_CONNECTION} requests waiting`);
    } else if (this.pending.size > waitingBefore && this.engine.waiting > this.host.maxWaiting) {
      this.fail(`the server has more than ${this.host.maxWaiting} requests waiting`);
    }
  }

  private fail(reason: string): void {
    if (this.done) return;
    this.host.warn(`closing connection from ${this.peer}: ${reason}`);
    this.destroy();
  }

  private cleanup(): void {
    if (this.done) return;
    this.done = true;
    this.writer.release();
    this.queue.length = 0;
    this.queueHead = 0;
    this.engine.close(this);
    this.host.closed(this);
  }
}

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
import { sliceDeadline, type Job } from './slices.js';
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
  /** Frames received but not processed yet (server paused, write buffer full, slice used up). */
  private readonly queue: Uint8Array[] = [];
  private queueHead = 0;
  private writeBlocked = false;
  private done = false;
  private readonly peer: string;
  private readonly highWater: number;
  private readonly writer: AnswerWriter;
  /** Requests that take more than one slice, in order; the frames after them wait. */
  private readonly jobs: Job[] = [];
  /** When the current slice of work ends (`performance.now()`). */
  private sliceEnd = 0;
  private inSlice = false;
  private resumption: NodeJS.Immediate | undefined;

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

  /** Runs `job` (a request taking more than one slice) before any later frame. */
  runJob(job: Job): void {
    this.jobs.push(job);
    if (!this.inSlice) this.resumeSoon();
  }

  /**
   * Processes what was held back (server paused, write buffer full, or the
   * last slice used up), for one slice, or all of it with `whole` (on resume,
   * so what queued up while paused is processed in order).
   */
  pump(whole = false): void {
    if (this.done) return;
    this.startSlice(whole ? Infinity : sliceDeadline());
    try {
      while (this.queueHead < this.queue.length && this.ready()) {
        const frame = this.queue[this.queueHead]!;
        this.queue[this.queueHead++] = undefined as unknown as Uint8Array;
        this.process(frame);
      }
      if (this.queueHead === this.queue.length) {
        this.queue.length = 0;
        this.queueHead = 0;
      }
      this.runJobs();
    } finally {
      this.endSlice();
    }
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

  /** True when the next frame may be processed now: no job left, slice not used up. */
  private ready(): boolean {
    return this.runJobs() && performance.now() <= this.sliceEnd;
  }

  /** Runs the jobs for what is left of the slice; true when none is left. */
  private runJobs(): boolean {
    while (this.jobs.length > 0) {
      if (!this.canProcess() || !this.jobs[0]!.step(this.sliceEnd)) return false;
      this.jobs.shift();
    }
    return this.canProcess();
  }

  private startSlice(end = sliceDeadline()): void {
    this.sliceEnd = end;
    this.inSlice = true;
    this.socket.cork();
  }

  /** Ends a slice: what is left goes on at the next turn of the event loop (reading paused meanwhile). */
  private endSlice(): void {
    this.inSlice = false;
    this.socket.uncork();
    const left = this.jobs.length > 0 || this.queueHead < this.queue.length;
    if (left && this.canProcess()) this.resumeSoon();
    this.updateReading();
  }

  private resumeSoon(): void {
    if (this.done) return;
    this.resumption ??= setImmediate(() => {
      this.resumption = undefined;
      this.pump();
    });
  }

  private updateReading(): void {
    if (this.done) return;
    const read =
      this.canProcess() && this.queueHead === this.queue.length && this.jobs.length === 0;
    if (read && this.socket.isPaused()) this.socket.resume();
    else if (!read && !this.socket.isPaused()) this.socket.pause();
  }

  private onData(chunk: Buffer): void {
    this.startSlice();
    try {
      this.decoder.push(chunk, (frame) => {
        if (this.done) return;
        if (this.queueHead === this.queue.length && this.ready()) this.process(frame);
        else this.queue.push(new Uint8Array(frame)); // the frame may be a view into `chunk`
      });
      this.runJobs();
    } catch (e) {
      if (!(e instanceof FrameError)) throw e;
      this.fail(e.message);
    } finally {
      this.endSlice();
    }
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
    this.jobs.length = 0;
    if (this.resumption) clearImmediate(this.resumption);
    this.resumption = undefined;
    this.queue.length = 0;
    this.queueHead = 0;
    this.engine.close(this);
    this.host.closed(this);
  }
}

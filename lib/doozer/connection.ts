/**
 * One TCP connection to a Doozer server and its multiplexing loop: any number
 * of outstanding requests, each under a tag that is not reused while it is
 * reserved; answers matched by tag in any order; writes of one tick batched
 * into a single socket write.
 *
 * A connection is used once: when it fails for any reason every request still
 * waiting on it is rejected with the same error and the owner is told.
 */
import { errorMessage } from '../shared/errors.js';
import type { Socket } from 'node:net';
import { fromBinary, isFieldSet, toBinary } from '@bufbuild/protobuf';
import {
  Err,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  RequestSchema,
  ResponseSchema,
  type Response,
} from '../wire/index.js';
import { verbName } from './codec.js';
import { DoozerArgumentError, DoozerConnectionError, DoozerProtocolError } from './errors.js';
import type { Op } from './op.js';

const TAG_FIELD = ResponseSchema.field.tag;

/** Largest tag: the positive int32 range. Tags run 1..MAX_TAG and wrap. */
export const MAX_TAG = 0x7fffffff;

/** What a connection tells its owner. */
export interface ConnectionOwner {
  /** Called exactly once, after every outstanding request was rejected with `reason`. */
  connectionClosed(conn: Connection, reason: Error): void;
}

const describeError = errorMessage;

export class Connection {
  /** Reserved tags: sent requests not answered yet (settled or not). */
  readonly pending = new Map<number, Op>();
  /** Resolves when the socket has fully closed. */
  readonly closed: Promise<void>;
  private nextTag = 1;
  private failed: Error | undefined = undefined;
  private out: Uint8Array[] = [];
  private outBytes = 0;
  private flushQueued = false;
  private readonly decoder: FrameDecoder;
  /** Monotonic time (ms) at which bytes last arrived (or the connection opened). */
  lastHeardAt = performance.now();

  constructor(
    private readonly socket: Socket,
    /** `host:port` of the peer. */
    readonly address: string,
    private readonly maxFrameBytes: number,
    private readonly maxTag: number,
    private readonly owner: ConnectionOwner,
  ) {
    this.decoder = new FrameDecoder(maxFrameBytes);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (e) =>
      this.fail(
        new DoozerConnectionError(`connection to ${address} failed: ${e.message}`, address, {
          cause: e,
        }),
      ),
    );
    socket.on('close', () =>
      this.fail(new DoozerConnectionError(`connection to ${address} closed`, address)),
    );
  }

  /** True until the connection failed or was closed. */
  get open(): boolean {
    return this.failed === undefined;
  }

  /** Reserved tags whose request was already rejected (timeout/abort). */
  get abandoned(): number {
    let n = 0;
    for (const op of this.pending.values()) if (op.done) n++;
    return n;
  }

  /**
   * Reserves a tag for `op`, encodes it and queues it for the next batched
   * write. An op that cannot be encoded or is too large fails alone.
   */
  send(op: Op): void {
    if (op.done) return;
    if (this.failed !== undefined) {
      op.fail(this.failed);
      return;
    }
    if (this.pending.size >= this.maxTag) {
      op.fail(new DoozerConnectionError(`no free request tag on ${this.address}`, this.address));
      return;
    }
    let tag = this.nextTag;
    while (this.pending.has(tag)) tag = tag >= this.maxTag ? 1 : tag + 1;
    this.nextTag = tag >= this.maxTag ? 1 : tag + 1;
    op.req.tag = tag;
    let payload: Uint8Array;
    try {
      payload = toBinary(RequestSchema, op.req);
    } catch (e) {
      op.fail(
        new DoozerArgumentError(
          `${verbName(op.verb)}: cannot encode the request: ${describeError(e)}`,
        ),
      );
      return;
    }
    if (payload.length > this.maxFrameBytes) {
      op.fail(
        new DoozerArgumentError(
          `${verbName(op.verb)}: request of ${payload.length} bytes exceeds maxFrameBytes (${this.maxFrameBytes})`,
        ),
      );
      return;
    }
    this.pending.set(tag, op);
    this.out.push(payload);
    this.outBytes += FRAME_HEADER_BYTES + payload.length;
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(flushConnection, this);
    }
  }

  /** Writes every queued frame in one socket write. */
  flush(): void {
    this.flushQueued = false;
    const frames = this.out;
    if (frames.length === 0 || this.failed !== undefined) return;
    const buf = Buffer.allocUnsafe(this.outBytes);
    let pos = 0;
    for (const payload of frames) {
      buf.writeUInt32BE(payload.length, pos);
      buf.set(payload, pos + FRAME_HEADER_BYTES);
      pos += FRAME_HEADER_BYTES + payload.length;
    }
    this.out = [];
    this.outBytes = 0;
    this.socket.write(buf);
  }

  /**
   * Closes the connection: every outstanding request rejects with `reason`,
   * the owner is told once, the socket is destroyed. Idempotent.
   */
  fail(reason: Error): void {
    if (this.failed !== undefined) return;
    this.failed = reason;
    this.out = [];
    this.outBytes = 0;
    this.socket.destroy();
    const ops = [...this.pending.values()];
    this.pending.clear();
    for (const op of ops) op.fail(reason);
    this.owner.connectionClosed(this, reason);
  }

  private onData(chunk: Buffer): void {
    if (this.failed !== undefined) return;
    this.lastHeardAt = performance.now();
    try {
      this.decoder.push(chunk, this.onFrame);
    } catch (e) {
      this.fail(
        e instanceof DoozerConnectionError
          ? e
          : new DoozerProtocolError(
              `bad frame from ${this.address}: ${describeError(e)}`,
              this.address,
              { cause: e },
            ),
      );
    }
  }

  private readonly onFrame = (payload: Uint8Array): void => {
    if (this.failed !== undefined) return;
    let resp: Response;
    try {
      resp = fromBinary(ResponseSchema, payload);
    } catch (e) {
      throw new DoozerProtocolError(
        `undecodable response from ${this.address} (${payload.length} bytes): ${describeError(e)}`,
        this.address,
        { cause: e },
      );
    }
    if (!isFieldSet(resp, TAG_FIELD)) {
      throw new DoozerProtocolError(`response without a tag from ${this.address}`, this.address);
    }
    const op = this.pending.get(resp.tag);
    if (op === undefined) {
      throw new DoozerProtocolError(
        `answer for tag ${resp.tag}, which is not reserved, from ${this.address}`,
        this.address,
      );
    }
    this.pending.delete(resp.tag);
    op.answer(resp);
    if (resp.errCode === Err.READONLY && isFieldSet(resp, ResponseSchema.field.errCode)) {
      this.fail(
        new DoozerConnectionError(
          `${this.address} answered READONLY (not a consensus member): dropping the connection`,
          this.address,
        ),
      );
    }
  };

  private onEnd(): void {
    try {
      this.decoder.end();
    } catch (e) {
      this.fail(
        new DoozerProtocolError(
          `connection to ${this.address} ended mid-frame: ${describeError(e)}`,
          this.address,
          {
            cause: e,
          },
        ),
      );
      return;
    }
    this.fail(new DoozerConnectionError(`connection closed by ${this.address}`, this.address));
  }
}

function flushConnection(conn: Connection): void {
  conn.flush();
}

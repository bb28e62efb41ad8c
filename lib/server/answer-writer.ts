/**
 * How answers reach the sockets, and what they hold meanwhile: a large value
 * is written as a chunk of its own, the very bytes the store keeps, so a
 * value fanned out to many WAITs is neither encoded nor copied per waiter;
 * the socket is handed about {@link WRITE_CHUNK_BYTES} at a time, a turn
 * of the event loop at most, the rest waiting here, so no one connection
 * makes the kernel copy more than that in one turn; and every byte written but not yet handed to the
 * kernel is counted, per connection and server-wide (a shared value once,
 * however many hold it).
 */
import type { Socket } from 'node:net';
import { clearField, isFieldSet, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { encodeFrame, FRAME_HEADER_BYTES, ResponseSchema, type Response } from '../wire/index.js';
import { Deque } from './deque.js';

/** Values of at least this many bytes are written as a chunk of their own, shared. */
export const SHARED_VALUE_MIN_BYTES = 4096;
/**
 * The socket is handed more answer bytes only while its write buffer holds
 * less than this; a large value goes in pieces of at most this size.
 */
export const WRITE_CHUNK_BYTES = 1024 * 1024;
/** Responses are not limited by the request frame limit, only by the 4-byte length. */
const MAX_RESPONSE_BYTES = 0xffffffff;
const R = ResponseSchema.field;

/**
 * The memory answers hold until the kernel takes them, server-wide: each
 * connection's own bytes, plus each shared value once.
 */
export class WriteBudget {
  private held = 0;
  private readonly shared = new Map<Uint8Array, number>();

  constructor(
    /** Bytes past which the server closes the connections with the most unwritten answers. */
    readonly limit: number,
  ) {}

  /** Bytes held now. */
  get bytes(): number {
    return this.held;
  }

  /** True while more than {@link limit} bytes are held. */
  get exceeded(): boolean {
    return this.held > this.limit;
  }

  add(bytes: number): void {
    this.held += bytes;
  }

  release(bytes: number): void {
    this.held -= bytes;
  }

  /** One more holder of `chunk`; its bytes count from the first. */
  hold(chunk: Uint8Array): void {
    const holders = this.shared.get(chunk) ?? 0;
    if (holders === 0) this.held += chunk.byteLength;
    this.shared.set(chunk, holders + 1);
  }

  /** `times` holders fewer of `chunk`; its bytes stop counting with the last. */
  drop(chunk: Uint8Array, times = 1): void {
    const holders = (this.shared.get(chunk) ?? 0) - times;
    if (holders > 0) {
      this.shared.set(chunk, holders);
    } else if (this.shared.delete(chunk)) {
      this.held -= chunk.byteLength;
    }
  }
}

/** Bytes waiting for the socket, and what to do once the kernel has them. */
interface Piece {
  readonly bytes: Uint8Array;
  readonly written: () => void;
}

/** Writes the answers of one connection and keeps their account. */
export class AnswerWriter {
  /** Answer bytes written and not yet handed to the kernel (shared values in full). */
  unwritten = 0;
  private own = 0;
  private readonly shared = new Map<Uint8Array, number>();
  /** Pieces not handed to the socket yet. */
  private readonly waiting = new Deque<Piece>();
  private waitingBytes = 0;
  private nextTurn: NodeJS.Immediate | undefined;
  private released = false;

  constructor(
    private readonly socket: Socket,
    private readonly budget: WriteBudget,
    /** Called after the socket drained or took more at a later turn: {@link buffered} may be lower. */
    private readonly progressed: () => void = () => {},
  ) {
    socket.on('drain', () => this.flushAndTell());
  }

  /** Answer bytes not yet handed to the kernel: in the socket's write buffer, or waiting for it. */
  get buffered(): number {
    return this.socket.writableLength + this.waitingBytes;
  }

  /** Encodes and writes `response` (which it may change: do not reuse it). */
  write(response: Response): void {
    if (this.released) return;
    const value = response.value;
    if (
      value.byteLength < SHARED_VALUE_MIN_BYTES ||
      isFieldSet(response, R.len) ||
      isFieldSet(response, R.errCode) ||
      isFieldSet(response, R.errDetail)
    ) {
      this.writeOwn(encodeFrame(toBinary(ResponseSchema, response), MAX_RESPONSE_BYTES));
      return;
    }
    // Every field but the value, then the value's key and length, then the
    // value itself: field order is the schema's (the value is the last field
    // set in an answer that carries one).
    clearField(response, R.value);
    const rest = toBinary(ResponseSchema, response);
    const key = new BinaryWriter()
      .tag(R.value.number, WireType.LengthDelimited)
      .uint32(value.byteLength)
      .finish();
    const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES + rest.length + key.length);
    head.writeUInt32BE(rest.length + key.length + value.byteLength, 0); // throws past 4 GiB
    head.set(rest, FRAME_HEADER_BYTES);
    head.set(key, FRAME_HEADER_BYTES + rest.length);
    this.writeOwn(head);
    this.writeShared(value);
  }

  /** Gives back everything still counted: the socket is going away. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.budget.release(this.own);
    for (const [chunk, times] of this.shared) this.budget.drop(chunk, times);
    this.shared.clear();
    this.waiting.clear();
    this.waitingBytes = 0;
    if (this.nextTurn) clearImmediate(this.nextTurn);
    this.nextTurn = undefined;
    this.own = 0;
    this.unwritten = 0;
  }

  private writeOwn(bytes: Buffer): void {
    const n = bytes.length;
    this.own += n;
    this.unwritten += n;
    this.budget.add(n);
    this.send(bytes, () => {
      this.own -= n;
      this.unwritten -= n;
      this.budget.release(n);
    });
  }

  private writeShared(chunk: Uint8Array): void {
    this.shared.set(chunk, (this.shared.get(chunk) ?? 0) + 1);
    this.unwritten += chunk.byteLength;
    this.budget.hold(chunk);
    const last = chunk.byteLength - 1;
    for (let at = 0; at < chunk.byteLength; at += WRITE_CHUNK_BYTES) {
      const piece = chunk.subarray(at, at + WRITE_CHUNK_BYTES);
      this.send(piece, () => {
        this.unwritten -= piece.byteLength;
        if (at + piece.byteLength <= last) return; // the value is held until its last piece is out
        const times = this.shared.get(chunk)! - 1;
        if (times > 0) this.shared.set(chunk, times);
        else this.shared.delete(chunk);
        this.budget.drop(chunk);
      });
    }
  }

  /** Queues `bytes`; `written` runs once the kernel has them (not after {@link release}). */
  private send(bytes: Uint8Array, written: () => void): void {
    this.waiting.push({
      bytes,
      written: () => {
        if (!this.released) written();
      },
    });
    this.waitingBytes += bytes.byteLength;
    this.flush();
  }

  /**
   * Hands waiting pieces to the socket, about WRITE_CHUNK_BYTES a turn of
   * the event loop and while it holds less than that. What stays behind
   * goes on at its 'drain' when its last write said to wait, else at the
   * next turn (the kernel took everything: no 'drain' will come).
   */
  private flush(): void {
    let handed = 0;
    while (
      !this.released &&
      handed < WRITE_CHUNK_BYTES &&
      this.socket.writableLength < WRITE_CHUNK_BYTES
    ) {
      const piece = this.waiting.shift();
      if (!piece) return;
      this.waitingBytes -= piece.bytes.byteLength;
      handed += piece.bytes.byteLength;
      this.socket.write(piece.bytes, piece.written);
    }
    if (this.released || this.waiting.length === 0 || this.socket.writableNeedDrain) return;
    this.nextTurn ??= setImmediate(() => {
      this.nextTurn = undefined;
      this.flushAndTell();
    });
  }

  private flushAndTell(): void {
    if (this.released) return;
    this.flush();
    this.progressed();
  }
}

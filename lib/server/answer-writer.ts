/**
 * How answers reach the sockets, and what they hold meanwhile: a large value
 * is written as a chunk of its own, the very bytes the store keeps, so a
 * value fanned out to many WAITs is neither encoded nor copied per waiter;
 * and every byte written but not yet handed to the kernel is counted, per
 * connection and server-wide (a shared value once, however many hold it).
 */
import type { Socket } from 'node:net';
import { clearField, isFieldSet, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { encodeFrame, FRAME_HEADER_BYTES, ResponseSchema, type Response } from '../wire/index.js';

/** Values of at least this many bytes are written as a chunk of their own, shared. */
export const SHARED_VALUE_MIN_BYTES = 4096;
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

/** Writes the answers of one connection and keeps their account. */
export class AnswerWriter {
  /** Answer bytes written and not yet handed to the kernel (shared values in full). */
  unwritten = 0;
  private own = 0;
  private readonly shared = new Map<Uint8Array, number>();
  private released = false;

  constructor(
    private readonly socket: Socket,
    private readonly budget: WriteBudget,
  ) {}

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
    this.own = 0;
    this.unwritten = 0;
  }

  private writeOwn(bytes: Buffer): void {
    const n = bytes.length;
    this.own += n;
    this.unwritten += n;
    this.budget.add(n);
    this.socket.write(bytes, () => {
      if (this.released) return;
      this.own -= n;
      this.unwritten -= n;
      this.budget.release(n);
    });
  }

  private writeShared(chunk: Uint8Array): void {
    this.shared.set(chunk, (this.shared.get(chunk) ?? 0) + 1);
    this.unwritten += chunk.byteLength;
    this.budget.hold(chunk);
    this.socket.write(chunk, () => {
      if (this.released) return;
      const times = this.shared.get(chunk)! - 1;
      if (times > 0) this.shared.set(chunk, times);
      else this.shared.delete(chunk);
      this.unwritten -= chunk.byteLength;
      this.budget.drop(chunk);
    });
  }
}

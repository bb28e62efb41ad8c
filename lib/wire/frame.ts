/**
 * Length-prefixed framing of the Doozer wire protocol: every message is a
 * 4-byte big-endian unsigned length followed by that many bytes of protobuf.
 * Shared by the client (`lib/doozer`) and the embedded server (`lib/server`).
 */

/** Default largest frame either side accepts: 16 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** Bytes of the length prefix. */
export const FRAME_HEADER_BYTES = 4;

/** A frame on the wire broke the framing rules; the connection must be closed. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    message: string,
    /** `OVERSIZE`: the announced length exceeds the limit; `TRUNCATED`: the stream ended mid-frame. */
    readonly reason: 'OVERSIZE' | 'TRUNCATED',
  ) {
    super(message);
  }
}

/** Prefixes `payload` with its length. Throws {@link FrameError} when it exceeds `maxFrameBytes`. */
export function encodeFrame(payload: Uint8Array, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Buffer {
  if (payload.length > maxFrameBytes) {
    throw new FrameError(
      `frame of ${payload.length} bytes exceeds the limit of ${maxFrameBytes} bytes`,
      'OVERSIZE',
    );
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Incremental decoder: feed it socket chunks in order, it calls back once per
 * complete frame payload. Split and coalesced frames are both handled; a large
 * frame arriving in many chunks is copied once into a buffer of its own size.
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFill = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;

  constructor(readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  /** Bytes received that do not yet make a whole frame. */
  get pendingBytes(): number {
    return this.headerFill + this.bodyFill;
  }

  /**
   * Consumes `chunk`, calling `onFrame` for every frame it completes. The
   * payload handed to `onFrame` may be a view into `chunk`: copy it to keep
   * it past the call. Throws {@link FrameError} on an oversize length prefix;
   * the decoder is then unusable and the stream must be closed.
   */
  push(chunk: Uint8Array, onFrame: (payload: Uint8Array) => void): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.body === null) {
        if (this.headerFill === 0 && end - pos >= FRAME_HEADER_BYTES) {
          // Fast path: whole header (and maybe the whole frame) in this chunk.
          const len =
            ((chunk[pos]! << 24) >>> 0) +
            (chunk[pos + 1]! << 16) +
            (chunk[pos + 2]! << 8) +
            chunk[pos + 3]!;
          this.checkLength(len);
          pos += FRAME_HEADER_BYTES;
          if (end - pos >= len) {
            onFrame(chunk.subarray(pos, pos + len));
            pos += len;
            continue;
          }
          this.startBody(len);
          continue;
        }
        const take = Math.min(FRAME_HEADER_BYTES - this.headerFill, end - pos);
        this.header.set(chunk.subarray(pos, pos + take), this.headerFill);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < FRAME_HEADER_BYTES) return;
        const len = this.header.readUInt32BE(0);
        this.headerFill = 0;
        this.checkLength(len);
        if (len === 0) {
          onFrame(new Uint8Array(0));
          continue;
        }
        this.startBody(len);
        continue;
      }
      const body = this.body;
      const take = Math.min(body.length - this.bodyFill, end - pos);
      body.set(chunk.subarray(pos, pos + take), this.bodyFill);
      this.bodyFill += take;
      pos += take;
      if (this.bodyFill === body.length) {
        this.body = null;
        this.bodyFill = 0;
        onFrame(body);
      }
    }
  }

  /** Call when the stream ended: throws {@link FrameError} if it ended inside a frame. */
  end(): void {
    if (this.pendingBytes > 0) {
      const expected = this.body ? ` of ${this.body.length}` : '';
      throw new FrameError(
        `stream ended inside a frame (${this.pendingBytes}${expected} bytes received)`,
        'TRUNCATED',
      );
    }
  }

  private checkLength(len: number): void {
    if (len > this.maxFrameBytes) {
      throw new FrameError(
        `frame length ${len} exceeds the limit of ${this.maxFrameBytes} bytes`,
        'OVERSIZE',
      );
    }
  }

  private startBody(len: number): void {
    this.body = Buffer.allocUnsafe(len);
    this.bodyFill = 0;
  }
}

/**
 * A bare Doozer connection for tests: sends Request frames as given (tags,
 * missing fields and all) and hands back the decoded Response frames. No
 * retries, no validation: the point is to see exactly what a server answers.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { create, fromBinary, isFieldSet, toBinary } from '@bufbuild/protobuf';
import {
  encodeFrame,
  Err,
  FrameDecoder,
  RequestSchema,
  ResponseSchema,
  type Request,
  type Response,
  type Verb,
} from '../wire/index.js';

/** A request as a test writes it. Fields left out are absent on the wire. */
export interface RawRequest {
  /** Omitted: the connection picks the next free tag. `null`: no tag field at all. */
  tag?: number | null;
  verb?: Verb;
  path?: string;
  value?: Uint8Array | string;
  otherTag?: number;
  offset?: number;
  rev?: number | bigint;
}

/** The fields a response had set, in plain form (revs as numbers, values as text). */
export interface PlainResponse {
  tag?: number;
  flags?: number;
  rev?: number;
  path?: string;
  value?: string;
  len?: number;
  /** The error code's name, e.g. `REV_MISMATCH`. */
  err?: string;
  detail?: string;
}

/** The set fields of `res`, for `toEqual` assertions. */
export function plainResponse(res: Response): PlainResponse {
  const f = ResponseSchema.field;
  const out: PlainResponse = {};
  if (isFieldSet(res, f.tag)) out.tag = res.tag;
  if (isFieldSet(res, f.flags)) out.flags = res.flags;
  if (isFieldSet(res, f.rev)) out.rev = Number(res.rev);
  if (isFieldSet(res, f.path)) out.path = res.path;
  if (isFieldSet(res, f.value)) out.value = Buffer.from(res.value).toString('utf8');
  if (isFieldSet(res, f.len)) out.len = res.len;
  if (isFieldSet(res, f.errCode)) out.err = Err[res.errCode] ?? String(res.errCode);
  if (isFieldSet(res, f.errDetail)) out.detail = res.errDetail;
  return out;
}

/** Encodes `req` as one frame (length prefix included). */
export function encodeRequest(req: RawRequest): Buffer {
  const msg: Request = create(RequestSchema);
  if (req.tag !== undefined && req.tag !== null) msg.tag = req.tag;
  if (req.verb !== undefined) msg.verb = req.verb;
  if (req.path !== undefined) msg.path = req.path;
  if (req.value !== undefined) {
    msg.value = typeof req.value === 'string' ? Buffer.from(req.value) : req.value;
  }
  if (req.otherTag !== undefined) msg.otherTag = req.otherTag;
  if (req.offset !== undefined) msg.offset = req.offset;
  if (req.rev !== undefined) msg.rev = BigInt(req.rev);
  return encodeFrame(toBinary(RequestSchema, msg), 0xffffffff);
}

/** A raw client connection to a Doozer server. */
export class RawDoozerConnection {
  /** Responses not claimed by {@link call}, in arrival order. */
  private readonly inbox: PlainResponse[] = [];
  private readonly byTag = new Map<number, (res: Response) => void>();
  private readonly nextWaiters: ((res: PlainResponse) => void)[] = [];
  private readonly decoder = new FrameDecoder(0xffffffff);
  private tag = 0;
  /** Resolves when the socket has closed (for any reason). */
  readonly closed: Promise<void>;
  private isClosed = false;

  private constructor(readonly socket: Socket) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    void this.closed.then(() => {
      this.isClosed = true;
    });
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk, (payload) => this.onResponse(fromBinary(ResponseSchema, payload)));
    });
  }

  /** Connects to `port` on `host` (default 127.0.0.1). */
  static connect(port: number, host = '127.0.0.1'): Promise<RawDoozerConnection> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ port, host });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        socket.setNoDelay(true);
        resolve(new RawDoozerConnection(socket));
      });
    });
  }

  /** True once the socket closed. */
  get isOpen(): boolean {
    return !this.isClosed;
  }

  /** Sends `req` without waiting; returns its tag (or `undefined` for a tagless request). */
  send(req: RawRequest): number | undefined {
    const tag = req.tag === undefined ? this.nextTag() : req.tag;
    this.socket.write(encodeRequest({ ...req, tag }));
    return tag ?? undefined;
  }

  /** Sends `req` and resolves with the response carrying its tag. */
  async call(req: RawRequest): Promise<PlainResponse> {
    return plainResponse(await this.callForResponse(req));
  }

  /** Like {@link call}, with the decoded protobuf message (for exact bytes). */
  callForResponse(req: RawRequest): Promise<Response> {
    const tag = req.tag ?? this.nextTag();
    const answer = new Promise<Response>((resolve) => this.byTag.set(tag, resolve));
    this.send({ ...req, tag });
    return answer;
  }

  /** Resolves with the next response carrying `tag` (also one that already arrived). */
  answerTo(tag: number): Promise<PlainResponse> {
    const i = this.inbox.findIndex((r) => (r.tag ?? 0) === tag);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]!);
    return new Promise((resolve) => this.byTag.set(tag, (res) => resolve(plainResponse(res))));
  }

  /** Resolves with the next response not claimed by {@link call} / {@link answerTo}. */
  next(): Promise<PlainResponse> {
    const first = this.inbox.shift();
    if (first) return Promise.resolve(first);
    return new Promise((resolve) => this.nextWaiters.push(resolve));
  }

  /** Writes raw bytes (garbage, partial frames) to the socket. */
  writeRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Closes the socket and waits until it is closed. */
  async close(): Promise<void> {
    this.socket.destroy();
    await this.closed;
  }

  private nextTag(): number {
    do this.tag = (this.tag + 1) & 0x7fffffff;
    while (this.byTag.has(this.tag));
    return this.tag;
  }

  private onResponse(res: Response): void {
    const claimed = this.byTag.get(res.tag);
    if (claimed) {
      this.byTag.delete(res.tag);
      claimed(res);
      return;
    }
    const plain = plainResponse(res);
    const waiter = this.nextWaiters.shift();
    if (waiter) waiter(plain);
    else this.inbox.push(plain);
  }
}

/**
 * The Doozer client: one pipelined connection at a time, reconnect with
 * backoff over all `ca` addresses, typed errors, an observable connection
 * state. See docs/doozer-client.md.
 */
import { durationProblem } from '../shared/duration.js';
import { errorMessage } from '../shared/errors.js';
import { guardLogger } from '../shared/logger.js';
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { inspect } from 'node:util';
import { create } from '@bufbuild/protobuf';
import { ReplaySubject, type Observable } from 'rxjs';
import { DEFAULT_MAX_FRAME_BYTES, RequestSchema, Verb, explainBadPath } from '../wire/index.js';
import { backoffDelay, resolveBackoff, type BackoffPolicy } from './backoff.js';
import {
  bytesArg,
  decodeEvent,
  decodeFile,
  decodeNothing,
  decodePath,
  decodeRev,
  decodeStat,
  decodeText,
  decodeWalk,
  int32Arg,
  revToWire,
  stringArg,
  type Decode,
} from './codec.js';
import { Connection, MAX_TAG, type ConnectionOwner } from './connection.js';
import {
  DoozerArgumentError,
  DoozerConnectionError,
  DoozerError,
  DoozerPathError,
  DoozerPermissionError,
  DoozerProtocolError,
  DoozerTimeoutError,
  DoozerUriError,
} from './errors.js';
import { Op } from './op.js';
import type {
  DoozerClientEventMap,
  DoozerClientOptions,
  DoozerClientStats,
  DoozerConnectionEvent,
  DoozerConnectionState,
  DoozerEvent,
  DoozerFile,
  DoozerLogger,
  DoozerStat,
  DoozerWalkEntry,
  RequestOptions,
  WatchOptions,
} from './types.js';
import {
  formatAddress,
  parseAddress,
  parseDoozerUri,
  uriSecret,
  type DoozerAddress,
  type DoozerUri,
} from './uri.js';

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
/** A connection that lived this long resets the backoff. */
const STABLE_CONNECTION_MS = 1000;
/** Outstanding GETDIR requests of one getdir() call, at most. */
const GETDIR_WINDOW = 1024;
/** getdir() asks STAT for the entry count first unless it wants at most this many names. */
const GETDIR_BLIND = 16;
/** Outstanding WALK requests of one walk() iteration, at most. */
const WALK_WINDOW = 64;

function isRange(e: unknown): boolean {
  return e instanceof DoozerError && e.code === 'RANGE';
}

/**
 * How many times in a row {@link DoozerClient.watch} re-issues a WAIT whose
 * connection failed on an undecodable answer before it gives up and throws.
 */
export const WATCH_PROTOCOL_RETRIES = 3;

function checkTimeout(value: number | undefined, what: string): number | undefined {
  if (value === undefined || value === Infinity) return value; // Infinity: no timeout
  const problem = durationProblem(value);
  if (problem !== undefined) {
    throw new DoozerArgumentError(`${what} ${problem} (or Infinity for none)`);
  }
  return value;
}

function noop(): void {}

/** A request the client sends on a connection itself (ACCESS, keepalive), bypassing the queue. */
function directOp(verb: Verb, fields: RequestFields, decode: Decode): Op {
  return new Op(create(RequestSchema, { ...fields, verb }), verb, undefined, decode);
}

/**
 * Default keepalive: probe after 3 s of silence (longer than the election's
 * default 2 s renewal period, so its followers, which hear every renewal,
 * never need a probe) and give a slow server 3 s to answer: a dead connection
 * is noticed within about 7.5 s.
 */
const DEFAULT_KEEPALIVE = { intervalMs: 3000, timeoutMs: 3000 } as const;

function resolveKeepalive(
  option: DoozerClientOptions['keepalive'],
): { intervalMs: number; timeoutMs: number } | undefined {
  if (option === false) return undefined;
  const intervalMs =
    checkTimeout(option?.intervalMs, 'keepalive.intervalMs') ?? DEFAULT_KEEPALIVE.intervalMs;
  const timeoutMs =
    checkTimeout(option?.timeoutMs, 'keepalive.timeoutMs') ?? DEFAULT_KEEPALIVE.timeoutMs;
  if (!Number.isFinite(intervalMs) || !Number.isFinite(timeoutMs)) {
    throw new DoozerArgumentError('keepalive.intervalMs and keepalive.timeoutMs must be finite');
  }
  return { intervalMs, timeoutMs };
}

/** The request fields a verb fills in (verb and tag are set by the client). */
interface RequestFields {
  path?: string;
  value?: Uint8Array;
  offset?: number;
  rev?: bigint;
}

/**
 * Yields the answers for offsets `start`, `start+1`, ... (at most `limit` of
 * them), keeping up to `window` requests outstanding, in offset order; ends at
 * the first RANGE answer. Requests still outstanding when the consumer stops
 * settle on their own (their rejections are handled).
 */
async function* scanOffsets<T>(
  issue: (offset: number) => Promise<T>,
  start: number,
  limit: number,
  window: number,
  initialWidth = 16,
): AsyncGenerator<T, void, undefined> {
  const inflight: Promise<T>[] = [];
  let next = start;
  const end = start + limit;
  let width = Math.min(initialWidth, window);
  for (;;) {
    while (inflight.length < width && next < end) {
      const p = issue(next++);
      p.catch(noop);
      inflight.push(p);
    }
    const head = inflight.shift();
    if (head === undefined) return;
    let value: T;
    try {
      value = await head;
    } catch (e) {
      if (isRange(e)) return;
      throw e;
    }
    yield value;
    width = Math.min(window, width * 2);
  }
}

/**
 * A Doozer protocol client. Create it with {@link DoozerClient.connect}.
 *
 * Requests are pipelined on one connection; answers are matched by tag. When
 * the connection drops, outstanding requests reject with
 * {@link DoozerConnectionError} (they are never re-sent) and the client
 * reconnects with backoff, rotating over the `ca` addresses; requests made
 * meanwhile wait for the new connection, bounded by their timeout/signal.
 *
 * Events (`connected`, `disconnected`, `reconnected`, `closed`) are emitted
 * both as EventEmitter events and on {@link DoozerClient.state$}.
 */
export class DoozerClient extends EventEmitter<DoozerClientEventMap> {
  readonly #uri: DoozerUri;
  #secret: string | undefined;
  #addresses: readonly DoozerAddress[];
  #index: number;
  readonly #bootUri: string | undefined;
  readonly #connectTimeoutMs: number;
  readonly #requestTimeoutMs: number | undefined;
  readonly #backoff: BackoffPolicy | undefined;
  readonly #maxFrameBytes: number;
  readonly #maxTag: number;
  readonly #keepalive: { readonly intervalMs: number; readonly timeoutMs: number } | undefined;
  readonly #logger: DoozerLogger;
  #state: DoozerConnectionState = 'connecting';
  #conn: Connection | undefined = undefined;
  /** Socket of a connection attempt in progress, destroyed by close(). */
  #attemptSocket: Socket | undefined = undefined;
  #attemptConn: Connection | undefined = undefined;
  /** A `cn=` lookup through the boot URI in progress, aborted by close(). */
  #lookup: AbortController | undefined = undefined;
  readonly #queue = new Set<Op>();
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  #attempt = 0;
  #failedInRow = 0;
  #connectedAt = 0;
  #connectionId = 0;
  #closing: Promise<void> | undefined = undefined;
  /** Set first thing by close(): stops every reconnection path. */
  #closed = false;
  readonly #events = new ReplaySubject<DoozerConnectionEvent>(1);
  readonly #owner: ConnectionOwner = {
    connectionClosed: (conn, reason) => this.#connectionClosed(conn, reason),
  };

  /**
   * Connection events; replays the latest one to new subscribers and
   * completes after `closed`.
   */
  readonly state$: Observable<DoozerConnectionEvent> = this.#events.asObservable();

  private constructor(
    uri: DoozerUri,
    addresses: readonly DoozerAddress[],
    options: DoozerClientOptions,
  ) {
    super();
    this.#uri = uri;
    this.#secret = uriSecret(uri);
    this.#addresses = addresses;
    this.#bootUri = options.bootUri;
    this.#connectTimeoutMs =
      checkTimeout(options.connectTimeoutMs, 'connectTimeoutMs') ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.#requestTimeoutMs = checkTimeout(options.requestTimeoutMs, 'requestTimeoutMs');
    this.#backoff = resolveBackoff(options.reconnect);
    const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < 64 || maxFrameBytes > 0xffffffff) {
      throw new DoozerArgumentError(
        `maxFrameBytes must be an integer from 64 to 2^32-1, got ${maxFrameBytes}`,
      );
    }
    this.#maxFrameBytes = maxFrameBytes;
    const maxTag = options.maxTag ?? MAX_TAG;
    if (!Number.isSafeInteger(maxTag) || maxTag < 1 || maxTag > MAX_TAG) {
      throw new DoozerArgumentError(
        `maxTag must be an integer from 1 to ${MAX_TAG}, got ${maxTag}`,
      );
    }
    this.#maxTag = maxTag;
    this.#keepalive = resolveKeepalive(options.keepalive);
    this.#logger = guardLogger(options.logger ?? {});
    this.#index = options.startAt === 'first' ? 0 : Math.floor(Math.random() * addresses.length);
  }

  /**
   * Connects to a Doozer server. Resolves once a connection is up and, when
   * the URI has `sk=`, ACCESS has succeeded. The first attempt tries every
   * `ca` address once (starting at a random one unless `startAt: 'first'`).
   *
   * @throws {DoozerUriError} the URI is malformed, or its `cn=` cluster has no
   *   members (or no `bootUri` was given to look it up).
   * @throws {DoozerPermissionError} the `sk=` secret was refused.
   * @throws {DoozerConnectionError} no address (or no boot address) could be reached.
   * @throws the reason of `options.signal` when it aborts before the connection is up.
   */
  static async connect(
    uri: string | DoozerUri,
    options: DoozerClientOptions = {},
  ): Promise<DoozerClient> {
    const { signal } = options;
    signal?.throwIfAborted();
    const parsed = typeof uri === 'string' ? parseDoozerUri(uri) : uri;
    const addresses = await resolveAddresses(parsed, options);
    signal?.throwIfAborted();
    const client = new DoozerClient(parsed, addresses, options);
    const onAbort = (): void => void client.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await client.#connectFirst();
      signal?.throwIfAborted();
    } catch (e) {
      client.#closed = true;
      client.#state = 'closed';
      client.#events.complete();
      if (signal?.aborted) throw signal.reason;
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return client;
  }

  /** Current connection state. */
  get state(): DoozerConnectionState {
    return this.#state;
  }

  /** `host:port` of the current connection, or `undefined` while there is none. */
  get address(): string | undefined {
    return this.#conn?.address;
  }

  /**
   * Number of the current connection: 1 for the first, incremented on every
   * reconnection (after ACCESS). While disconnected it keeps the number of
   * the connection that was lost. See {@link RequestOptions.connectionId}.
   */
  get connectionId(): number {
    return this.#connectionId;
  }

  /** The URI the client was created from (secret redacted when printed). */
  get uri(): DoozerUri {
    return this.#uri;
  }

  /** Bookkeeping counters: reserved tags, abandoned requests, queued requests. */
  stats(): DoozerClientStats {
    const conn = this.#conn;
    return {
      reservedTags: conn?.pending.size ?? 0,
      abandoned: conn?.abandoned ?? 0,
      queued: this.#queue.size,
    };
  }

  // ---------------------------------------------------------------- verbs

  /** REV: the current store rev. */
  rev(opts?: RequestOptions): Promise<number> {
    return this.#call(Verb.REV, undefined, {}, decodeRev, opts) as Promise<number>;
  }

  /**
   * GET: the file at `path` as of store rev `rev` (current when omitted).
   * A missing file (or a bad path) answers rev 0 and an empty value; a
   * directory rejects with ISDIR; a future rev waits until the store gets there.
   */
  get(path: string, rev?: number, opts?: RequestOptions): Promise<DoozerFile> {
    return this.#call(
      Verb.GET,
      path,
      () => readAt(path, rev),
      decodeFile,
      opts,
    ) as Promise<DoozerFile>;
  }

  /**
   * SET: writes `value` (strings as UTF-8) if `rev` >= the file rev (`0`:
   * create only, `-1`: unconditional). Resolves with the new file rev.
   *
   * @throws {DoozerPathError} before sending, when `path` breaks the path rules.
   */
  set(
    path: string,
    rev: number,
    value: string | Uint8Array,
    opts?: RequestOptions,
  ): Promise<number> {
    return this.#call(
      Verb.SET,
      path,
      () => ({ path: checkWritePath(path), rev: revToWire(rev), value: bytesArg(value) }),
      decodeRev,
      opts,
    ) as Promise<number>;
  }

  /**
   * DEL: deletes `path` if `rev` >= the file rev (`-1`: unconditional).
   * Deleting a missing file succeeds.
   *
   * @throws {DoozerPathError} before sending, when `path` breaks the path rules.
   */
  del(path: string, rev: number, opts?: RequestOptions): Promise<void> {
    return this.#call(
      Verb.DEL,
      path,
      () => ({ path: checkWritePath(path), rev: revToWire(rev) }),
      decodeNothing,
      opts,
    ) as Promise<void>;
  }

  /**
   * WAIT: the first change of a file matching `glob` at a store rev >= `rev`.
   * Blocks until there is one. The client's default `requestTimeoutMs` does
   * not apply; give `opts.timeoutMs` or `opts.signal` to bound it.
   *
   * @throws {DoozerTooLateError} `rev` is older than the server's history.
   */
  wait(glob: string, rev: number, opts?: RequestOptions): Promise<DoozerEvent> {
    return this.#call(
      Verb.WAIT,
      glob,
      () => ({ path: stringArg(glob, 'glob'), rev: revToWire(rev) }),
      decodeEvent,
      opts,
      false,
    ) as Promise<DoozerEvent>;
  }

  /** NOP: a round trip (it consumes a rev on the server). */
  nop(opts?: RequestOptions): Promise<void> {
    return this.#call(Verb.NOP, undefined, {}, decodeNothing, opts) as Promise<void>;
  }

  /**
   * STAT: file rev and length, or for a directory rev -2 and its number of
   * entries (`isDir`). A missing file answers `{ rev: 0, len: 0 }`.
   */
  stat(path: string, rev?: number, opts?: RequestOptions): Promise<DoozerStat> {
    return this.#call(
      Verb.STAT,
      path,
      () => readAt(path, rev),
      decodeStat,
      opts,
    ) as Promise<DoozerStat>;
  }

  /**
   * GETDIR: the entry names of directory `path` at store rev `rev`, from
   * `offset` (default 0), at most `limit` of them (default all). The
   * requests for the offsets are pipelined; the listing ends at the first
   * RANGE answer. A file rejects with NOTDIR, a missing directory with NOENT.
   * Unless `limit` is 16 or less, a STAT at `rev` first sizes the pipeline to
   * the directory's entry count, so no request is wasted past the end.
   */
  async getdir(
    path: string,
    rev: number,
    offset = 0,
    limit = Infinity,
    opts?: RequestOptions,
  ): Promise<string[]> {
    const wireRev = revToWire(rev);
    const start = int32Arg(offset, 'offset');
    if (start < 0) throw new DoozerArgumentError(`offset must not be negative, got ${start}`);
    if (limit !== Infinity && !(Number.isSafeInteger(limit) && limit >= 0)) {
      throw new DoozerArgumentError(
        `limit must be a non-negative integer or Infinity, got ${String(limit)}`,
      );
    }
    stringArg(path, 'path');
    const names: string[] = [];
    const issue = (at: number): Promise<string> =>
      this.#call(
        Verb.GETDIR,
        path,
        () => ({ path, rev: wireRev, offset: at }),
        decodePath,
        opts,
      ) as Promise<string>;
    let count = Math.min(limit, 0x7fffffff - start + 1);
    if (count > GETDIR_BLIND && start >= 0) {
      // Size the pipeline exactly: STAT at the same rev gives the entry count.
      // Not a directory: one GETDIR fetches the server's NOTDIR/NOENT answer.
      const stat = await this.stat(path, rev, opts);
      count = stat.isDir ? Math.min(count, Math.max(0, stat.len - start)) : 1;
    }
    for await (const name of scanOffsets(issue, start, count, GETDIR_WINDOW, GETDIR_WINDOW)) {
      names.push(name);
    }
    return names;
  }

  /**
   * WALK: every FILE matching `glob` at store rev `rev`, in path order
   * (offsets 0, 1, ... until RANGE; a few requests are kept in flight ahead
   * of the consumer). Directories never match.
   */
  async *walk(
    glob: string,
    rev: number,
    opts?: RequestOptions,
  ): AsyncGenerator<DoozerWalkEntry, void, undefined> {
    const wireRev = revToWire(rev);
    stringArg(glob, 'glob');
    const issue = (at: number): Promise<DoozerWalkEntry> =>
      this.#call(
        Verb.WALK,
        glob,
        () => ({ path: glob, rev: wireRev, offset: at }),
        decodeWalk,
        opts,
      ) as Promise<DoozerWalkEntry>;
    yield* scanOffsets(issue, 0, 0x7fffffff, WALK_WINDOW);
  }

  /** SELF: the id of the server node this connection talks to. */
  self(opts?: RequestOptions): Promise<string> {
    return this.#call(Verb.SELF, undefined, {}, decodeText, opts) as Promise<string>;
  }

  /**
   * ACCESS: presents a secret. On success the secret replaces the URI's
   * `sk=` for every later reconnection. A refusal rejects with
   * {@link DoozerPermissionError}. The secret never appears in errors or logs.
   */
  async access(secret: string, opts?: RequestOptions): Promise<void> {
    const value = bytesArg(stringArg(secret, 'secret'), 'secret');
    await this.#call(Verb.ACCESS, undefined, { value }, decodeNothing, opts);
    this.#secret = secret;
  }

  /**
   * Follows changes of files matching `glob` from store rev `fromRev`: WAIT,
   * yield the event, WAIT again from its rev + 1. Ends cleanly (returns) when
   * `opts.signal` aborts, or at once when the consumer stops iterating
   * (`break`, `return()`), even while a WAIT is outstanding. Throws
   * {@link DoozerTooLateError} when the rev fell out of the server's history
   * (re-read current state, then watch again). A dropped connection is waited
   * out and the WAIT re-issued from the same rev, unless
   * `resumeOnReconnect: false` or the client cannot reconnect; an answer the
   * client cannot decode (a {@link DoozerProtocolError}) is retried at most
   * {@link WATCH_PROTOCOL_RETRIES} times at one rev, then thrown.
   */
  watch(
    glob: string,
    fromRev: number,
    opts: WatchOptions = {},
  ): AsyncGenerator<DoozerEvent, void, undefined> {
    const stop = new AbortController();
    const outer = opts.signal;
    const onAbort = (): void => stop.abort(outer?.reason);
    if (outer?.aborted) stop.abort(outer.reason);
    else outer?.addEventListener('abort', onAbort, { once: true });
    const gen = this.#follow(glob, fromRev, stop.signal, opts.resumeOnReconnect ?? true, () =>
      outer?.removeEventListener('abort', onAbort),
    );
    // A generator's return() waits until its pending await settles; abort the
    // outstanding WAIT first so that stopping the iteration is immediate.
    const finish = gen.return.bind(gen);
    const fail = gen.throw.bind(gen);
    gen.return = (value) => {
      stop.abort();
      return finish(value);
    };
    gen.throw = (e) => {
      stop.abort();
      return fail(e);
    };
    return gen;
  }

  async *#follow(
    glob: string,
    fromRev: number,
    signal: AbortSignal,
    resume: boolean,
    cleanup: () => void,
  ): AsyncGenerator<DoozerEvent, void, undefined> {
    let rev = fromRev;
    let garbled = 0;
    try {
      for (;;) {
        if (signal.aborted) return;
        let event: DoozerEvent;
        try {
          event = await this.wait(glob, rev, { signal });
        } catch (e) {
          if (signal.aborted) return;
          const retry =
            resume &&
            e instanceof DoozerConnectionError &&
            this.#canQueue() &&
            (!(e instanceof DoozerProtocolError) || ++garbled <= WATCH_PROTOCOL_RETRIES);
          if (!retry) throw e;
          this.#log(
            'debug',
            `watch ${glob}: connection lost, waiting again from rev ${rev} after reconnect`,
          );
          continue;
        }
        garbled = 0;
        yield event;
        rev = event.rev + 1;
      }
    } finally {
      cleanup();
    }
  }

  /**
   * Drops the current connection and reconnects, to the next `ca` address,
   * as if the connection had failed: requests outstanding on it reject with
   * {@link DoozerConnectionError} (queued and later ones wait for the new
   * connection). For callers that see a connection stop answering: the
   * keepalive does this for a connection that went silent.
   * No-op while not connected, or when `reconnect` is off.
   */
  reconnect(reason = 'reconnection requested'): void {
    const conn = this.#conn;
    if (conn === undefined || this.#backoff === undefined || this.#closed) return;
    conn.fail(new DoozerConnectionError(`${reason}: dropping ${conn.address}`, conn.address));
  }

  /**
   * Closes the client: outstanding and queued requests reject with
   * {@link DoozerConnectionError}, no reconnection happens any more, and the
   * `closed` event is emitted. Idempotent; resolves once the socket is closed.
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** A description without the secret. */
  override toString(): string {
    return `DoozerClient(${this.#uri.toString()}, state=${this.#state}${this.address ? `, address=${this.address}` : ''})`;
  }

  /** `util.inspect` form: {@link DoozerClient.toString}. */
  [inspect.custom](): string {
    return this.toString();
  }

  // ------------------------------------------------------------- requests

  /** Whether a request made now would wait for a (re)connection. */
  #canQueue(): boolean {
    return (
      this.#backoff !== undefined &&
      (this.#state === 'connecting' || this.#state === 'disconnected')
    );
  }

  /**
   * Builds, arms and dispatches one request. Validation errors (including
   * {@link DoozerPathError}) reject the promise before anything is sent.
   */
  #call(
    verb: Verb,
    path: string | undefined,
    fields: RequestFields | (() => RequestFields),
    decode: Decode,
    opts: RequestOptions | undefined,
    useDefaultTimeout = true,
  ): Promise<unknown> {
    let op: Op;
    let timeoutMs: number | undefined;
    try {
      const init = typeof fields === 'function' ? fields() : fields;
      timeoutMs =
        checkTimeout(opts?.timeoutMs, 'timeoutMs') ??
        (useDefaultTimeout ? this.#requestTimeoutMs : undefined);
      const req = create(RequestSchema, init);
      req.verb = verb;
      op = new Op(req, verb, path, decode);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new DoozerArgumentError(String(e)));
    }
    op.arm(timeoutMs, opts?.signal);
    if (op.done) return op.promise;
    const conn = this.#conn;
    const pinned = opts?.connectionId;
    if (pinned !== undefined && (conn === undefined || pinned !== this.#connectionId)) {
      op.fail(
        new DoozerConnectionError(
          `connection #${pinned} is gone (current: ${conn ? `#${this.#connectionId}` : 'none'})`,
          conn?.address,
        ),
      );
    } else if (conn !== undefined) {
      conn.send(op);
    } else if (this.#canQueue()) {
      op.queue = this.#queue;
      this.#queue.add(op);
    } else {
      op.fail(
        new DoozerConnectionError(
          this.#state === 'closed'
            ? 'the Doozer client is closed'
            : 'the Doozer client is disconnected (reconnect is off)',
        ),
      );
    }
    return op.promise;
  }

  // ----------------------------------------------------------- connecting

  async #connectFirst(): Promise<void> {
    const n = this.#addresses.length;
    let last: unknown;
    for (let i = 0; i < n; i++) {
      const index = (this.#index + i) % n;
      try {
        const conn = await this.#open(index);
        this.#adopt(conn, index, 'connected');
        return;
      } catch (e) {
        if (e instanceof DoozerPermissionError || this.#closed) throw e;
        last = e;
      }
    }
    throw new DoozerConnectionError(
      `could not connect to any Doozer address (${this.#addresses.map(formatAddress).join(', ')})`,
      undefined,
      { cause: last },
    );
  }

  /** Opens a connection to address `index` and presents the secret. Bounded by `connectTimeoutMs`. */
  async #open(index: number): Promise<Connection> {
    const target = this.#addresses[index];
    if (target === undefined) throw new DoozerConnectionError('no Doozer address to connect to');
    const address = formatAddress(target);
    this.#state = 'connecting';
    this.#log('debug', `doozer: connecting to ${address}`);
    const socket = netConnect({ host: target.host, port: target.port });
    this.#attemptSocket = socket;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      if (!Number.isFinite(this.#connectTimeoutMs)) return;
      timer = setTimeout(() => {
        reject(
          new DoozerConnectionError(
            `connecting to ${address} timed out after ${this.#connectTimeoutMs} ms`,
            address,
          ),
        );
      }, this.#connectTimeoutMs);
    });
    deadline.catch(noop);
    let conn: Connection | undefined;
    let onConnect = noop;
    let onError: (e: Error) => void = noop;
    let onClose = noop;
    try {
      await Promise.race([
        deadline,
        new Promise<void>((resolve, reject) => {
          onConnect = resolve;
          onError = (e) =>
            reject(
              new DoozerConnectionError(`cannot connect to ${address}: ${e.message}`, address, {
                cause: e,
              }),
            );
          onClose = () =>
            reject(new DoozerConnectionError(`connection to ${address} closed`, address));
          socket.once('connect', onConnect);
          socket.once('error', onError);
          socket.once('close', onClose);
        }),
      ]);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      socket.off('close', onClose);
      conn = new Connection(socket, address, this.#maxFrameBytes, this.#maxTag, this.#owner);
      this.#attemptConn = conn;
      if (this.#secret !== undefined) {
        const op = directOp(
          Verb.ACCESS,
          { value: Buffer.from(this.#secret, 'utf8') },
          decodeNothing,
        );
        conn.send(op);
        await Promise.race([deadline, op.promise]);
      }
      if (this.#closed) throw new DoozerConnectionError('the Doozer client is closed', address);
      // The connection may have failed right after answering ACCESS (same chunk).
      if (!conn.open) throw new DoozerConnectionError(`connection to ${address} closed`, address);
      return conn;
    } catch (e) {
      if (conn) conn.fail(e instanceof Error ? e : new DoozerConnectionError(String(e), address));
      else socket.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
      this.#attemptSocket = undefined;
      this.#attemptConn = undefined;
    }
  }

  /** Makes `conn` the current connection and sends the queued requests (after ACCESS, already done). */
  #adopt(conn: Connection, index: number, type: 'connected' | 'reconnected'): void {
    if (this.#closed) {
      conn.fail(new DoozerConnectionError('the Doozer client is closed', conn.address));
      return;
    }
    this.#conn = conn;
    this.#connectionId++;
    this.#index = index;
    this.#state = 'connected';
    this.#failedInRow = 0;
    this.#connectedAt = Date.now();
    this.#log('debug', `doozer: ${type} to ${conn.address}`);
    // Queued requests go out first, then listeners hear of the connection.
    const queued = [...this.#queue];
    this.#queue.clear();
    for (const op of queued) {
      op.queue = undefined;
      conn.send(op);
    }
    this.#watchLiveness(conn);
    this.#emit({ type, address: conn.address });
  }

  /** Probes an idle connection with REV and closes it when the probe goes unanswered. */
  #watchLiveness(conn: Connection): void {
    const keepalive = this.#keepalive;
    if (keepalive === undefined) return;
    const { intervalMs, timeoutMs } = keepalive;
    let probing = false;
    const timer = setInterval(
      () => {
        if (!conn.open) return;
        if (probing || performance.now() - conn.lastHeardAt < intervalMs) return;
        probing = true;
        const sentAt = performance.now();
        const op = directOp(Verb.REV, {}, decodeRev);
        op.arm(timeoutMs, undefined);
        conn.send(op);
        op.promise.then(
          () => (probing = false),
          (e: unknown) => {
            if (!(e instanceof DoozerTimeoutError)) {
              probing = false;
              return;
            }
            // Timers run before sockets are read: after a stall of the event
            // loop the answer may be waiting unread. Read first, then judge.
            setImmediate(() => {
              probing = false;
              if (!conn.open || conn.lastHeardAt > sentAt) return;
              conn.fail(
                new DoozerConnectionError(
                  `no answer from ${conn.address} within ${timeoutMs} ms of a keepalive probe: connection presumed dead`,
                  conn.address,
                ),
              );
            });
          },
        );
      },
      Math.max(1, Math.min(intervalMs, timeoutMs) / 2),
    );
    timer.unref();
    void conn.closed.then(() => clearInterval(timer));
  }

  #connectionClosed(conn: Connection, reason: Error): void {
    if (conn !== this.#conn) return; // an attempt that failed: #open reports it
    this.#conn = undefined;
    if (this.#closed) return;
    this.#state = 'disconnected';
    this.#log('warn', `doozer: disconnected from ${conn.address}: ${reason.message}`);
    this.#emit({ type: 'disconnected', address: conn.address, reason });
    if (this.#backoff === undefined) return;
    const lived = Date.now() - this.#connectedAt;
    if (lived >= Math.min(STABLE_CONNECTION_MS, this.#backoff.maxDelayMs)) this.#attempt = 0;
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    const policy = this.#backoff;
    if (policy === undefined || this.#closed) return;
    this.#state = 'disconnected';
    const delay = backoffDelay(policy, this.#attempt);
    this.#attempt++;
    this.#log('debug', `doozer: reconnecting in ${Math.round(delay)} ms`);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#reconnect();
    }, delay);
  }

  async #reconnect(): Promise<void> {
    if (this.#closed) return;
    const n = this.#addresses.length;
    const index = (this.#index + 1) % n;
    this.#index = index;
    try {
      const conn = await this.#open(index);
      this.#adopt(conn, index, 'reconnected');
      return;
    } catch (e) {
      if (this.#closed) return;
      if (e instanceof DoozerPermissionError) {
        // The secret is refused now (rotated?): requests waiting for the
        // reconnection would wait for nothing. Fail them; keep trying.
        for (const op of [...this.#queue]) op.fail(e);
        this.#queue.clear();
      }
      this.#log(
        e instanceof DoozerPermissionError ? 'warn' : 'debug',
        `doozer: reconnect attempt failed: ${errorMessage(e)}`,
      );
    }
    this.#failedInRow++;
    if (this.#failedInRow % n === 0) await this.#refreshCluster();
    this.#scheduleReconnect();
  }

  /** After a full rotation of failures, re-reads a `cn=` cluster's members through the boot URI. */
  async #refreshCluster(): Promise<void> {
    const name = this.#uri.clusterName;
    if (name === undefined || this.#uri.addresses.length > 0) return;
    if (this.#bootUri === undefined || this.#closed) return;
    const lookup = new AbortController();
    this.#lookup = lookup;
    try {
      const addresses = await lookupCluster(name, this.#bootUri, {
        connectTimeoutMs: this.#connectTimeoutMs,
        logger: this.#logger,
        signal: lookup.signal,
      });
      if (this.#closed) return;
      this.#addresses = addresses;
      this.#index = this.#index % addresses.length;
      this.#log(
        'debug',
        `doozer: cluster ${name} members: ${addresses.map(formatAddress).join(', ')}`,
      );
    } catch (e) {
      if (this.#closed) return;
      this.#log('warn', `doozer: cannot refresh cluster ${name}: ${errorMessage(e)}`);
    } finally {
      if (this.#lookup === lookup) this.#lookup = undefined;
    }
  }

  async #close(): Promise<void> {
    this.#lookup?.abort();
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const reason = new DoozerConnectionError('the Doozer client is closed', this.address);
    this.#state = 'closed';
    for (const op of [...this.#queue]) op.fail(reason);
    this.#queue.clear();
    const waits: Promise<void>[] = [];
    for (const conn of [this.#conn, this.#attemptConn]) {
      if (conn === undefined) continue;
      conn.fail(reason);
      waits.push(conn.closed);
    }
    const socket = this.#attemptSocket;
    if (socket !== undefined && !socket.destroyed) {
      waits.push(new Promise((resolve) => socket.once('close', () => resolve())));
      socket.destroy();
    }
    this.#conn = undefined;
    await Promise.all(waits);
    this.#log('debug', 'doozer: closed');
    this.#emit({ type: 'closed' });
    this.#events.complete();
  }

  /** Logs through the user's logger; a logger that throws is ignored, never fatal. */
  #log(level: keyof DoozerLogger, msg: string): void {
    this.#logger[level]?.(msg); // (guarded: a broken logger must not take the connection down)
  }

  #emit(event: DoozerConnectionEvent): void {
    this.#events.next(event);
    try {
      // The event name and its payload type always agree (event.type).
      (this.emit as (name: string, e: DoozerConnectionEvent) => boolean)(event.type, event);
    } catch (e) {
      this.#log('error', `doozer: a '${event.type}' listener threw: ${errorMessage(e)}`);
    }
  }
}

/** Fields of a read of `path`, at store rev `rev` or the current one. */
function readAt(path: string, rev: number | undefined): RequestFields {
  stringArg(path, 'path');
  return rev === undefined ? { path } : { path, rev: revToWire(rev) };
}

function checkWritePath(path: string): string {
  stringArg(path, 'path');
  const reason = explainBadPath(path);
  if (reason !== undefined) throw new DoozerPathError(path, reason);
  return path;
}

/** The addresses to connect to: the `ca=` list, or else the `cn=` members read through the boot URI. */
async function resolveAddresses(
  uri: DoozerUri,
  options: DoozerClientOptions,
): Promise<readonly DoozerAddress[]> {
  // Like the Go client's DialUri: a cluster name is looked up only when the
  // URI gives no addresses ("cn= instead of addresses").
  if (uri.addresses.length > 0) return uri.addresses;
  const name = uri.clusterName ?? '';
  if (options.bootUri === undefined) {
    throw new DoozerUriError(
      `the URI names cluster cn=${name} but no bootUri option was given to look it up`,
    );
  }
  return lookupCluster(name, options.bootUri, {
    connectTimeoutMs:
      checkTimeout(options.connectTimeoutMs, 'connectTimeoutMs') ?? DEFAULT_CONNECT_TIMEOUT_MS,
    logger: options.logger ?? {},
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/** Reads `/ctl/ns/<name>/*` through the boot URI: each file holds a member's `host:port`. */
async function lookupCluster(
  name: string,
  bootUri: string,
  opts: { connectTimeoutMs: number; logger: DoozerLogger; signal?: AbortSignal },
): Promise<DoozerAddress[]> {
  const boot = await DoozerClient.connect(bootUri, {
    connectTimeoutMs: opts.connectTimeoutMs,
    requestTimeoutMs: opts.connectTimeoutMs,
    reconnect: false,
    logger: opts.logger,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const onAbort = (): void => void boot.close();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const rev = await boot.rev();
    const addresses: DoozerAddress[] = [];
    for await (const entry of boot.walk(`/ctl/ns/${name}/*`, rev)) {
      addresses.push(parseAddress(entry.text, `member ${entry.path} of cluster ${name}`));
    }
    if (addresses.length === 0) {
      throw new DoozerUriError(
        `cluster cn=${name} has no members under /ctl/ns/${name} at the boot URI`,
      );
    }
    return addresses;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await boot.close();
  }
}

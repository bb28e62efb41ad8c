/**
 * Public types of the Doozer client: options, results and connection events.
 */

/** Where the client writes its diagnostics. Every method is optional; messages never contain the secret. */
export interface DoozerLogger {
  debug?(msg: string): void;
  warn?(msg: string): void;
  error?(msg: string): void;
}

/**
 * Reconnect backoff: the n-th consecutive attempt (n from 0) waits
 * `min(maxDelayMs, initialDelayMs * multiplier^n) * (1 - jitter * random())`.
 */
export interface DoozerReconnectOptions {
  /** Delay ceiling of the first attempt. Default 100 ms. */
  initialDelayMs?: number;
  /** Largest delay ceiling. Default 5000 ms. */
  maxDelayMs?: number;
  /** Growth of the ceiling per failed attempt, >= 1. Default 2. */
  multiplier?: number;
  /** Share of the ceiling that is randomised, 0..1. Default 1 ("full jitter"). */
  jitter?: number;
}

/** Options of {@link DoozerClient.connect}. */
export interface DoozerClientOptions {
  /** Boot URI used to resolve a `cn=` cluster name by reading `/ctl/ns/<cn>/*`. */
  bootUri?: string;
  /** Limit of one connection attempt (TCP connect plus ACCESS). Default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * Timeout of requests that do not give their own `timeoutMs`. Default none.
   * Never applied to `wait()` / `watch()`, which block by design.
   */
  requestTimeoutMs?: number;
  /**
   * Reconnect policy after a connection drops: `true` (default) for the
   * defaults, `false` to stay disconnected, or the backoff parameters.
   * Attempts rotate over all `ca` addresses.
   */
  reconnect?: boolean | DoozerReconnectOptions;
  /** Largest frame accepted or sent. Default 16 MiB (`DEFAULT_MAX_FRAME_BYTES`). */
  maxFrameBytes?: number;
  /**
   * Detection of a silently dead connection (a crashed host, a dropped
   * route: TCP may not notice for many minutes). When nothing has arrived on
   * the connection for `intervalMs`, the client sends a REV (a read); if it is
   * not answered within `timeoutMs` the connection is closed as dead and the
   * client reconnects (to the next address). `false` turns it off. Default
   * `{ intervalMs: 3000, timeoutMs: 3000 }`: a dead connection is noticed
   * within about 7.5 s.
   */
  keepalive?: false | DoozerKeepaliveOptions;
  /** Diagnostics sink. Default: silent. */
  logger?: DoozerLogger;
  /**
   * Which `ca` address the first connection tries: `'random'` (default,
   * spreads clients over the nodes like the Go client) or `'first'`.
   * Later attempts rotate through the list in order from there.
   */
  startAt?: 'random' | 'first';
  /**
   * Aborts {@link DoozerClient.connect} (and a `cn=` lookup it makes): the
   * attempt stops and `connect()` rejects with the signal's reason. No effect
   * once connected; use `close()` then.
   */
  signal?: AbortSignal;
  /**
   * Largest request tag before the counter wraps to 1 (tags in use are
   * skipped). Default 2^31 - 1. Meant for tests of tag reuse.
   * @internal
   */
  maxTag?: number;
}

/** See {@link DoozerClientOptions.keepalive}. */
export interface DoozerKeepaliveOptions {
  /** Probe after this long without hearing from the server. Default 3000. */
  intervalMs?: number;
  /** A probe unanswered this long means the connection is dead. Default 3000. */
  timeoutMs?: number;
}

/** Per-request options. */
export interface RequestOptions {
  /** Reject with `DoozerTimeoutError` after this many ms (`Infinity`: never). Default: the client's `requestTimeoutMs`. */
  timeoutMs?: number;
  /** Reject with the signal's reason when it aborts. */
  signal?: AbortSignal;
  /**
   * Send only on this connection (a {@link DoozerClient.connectionId} seen
   * earlier). If that connection is gone (the client is disconnected or has
   * reconnected since), the request rejects at once with
   * `DoozerConnectionError` instead of waiting for or using another
   * connection: for writes whose rev was observed on that connection.
   */
  connectionId?: number;
}

/** Options of {@link DoozerClient.watch}. */
export interface WatchOptions {
  /** Ends the iteration cleanly (the iterator returns) when aborted. */
  signal?: AbortSignal;
  /**
   * When the connection drops while waiting, wait again from the same rev
   * once reconnected instead of throwing the `DoozerConnectionError`.
   * No event is lost: WAIT is a read. Default true (ignored when the client
   * does not reconnect or is closed).
   */
  resumeOnReconnect?: boolean;
}

/** A file as GET returns it. A missing file has rev 0 and an empty value. */
export interface DoozerFile {
  /** The file's bytes. */
  value: Uint8Array;
  /** The FILE rev (rev of the file's last change), not the store rev. */
  rev: number;
  /** `value` decoded as UTF-8. */
  readonly text: string;
}

/** One change reported by WAIT. */
export interface DoozerEvent {
  /** The file that changed. */
  path: string;
  /** The store rev of the change. */
  rev: number;
  /** The new value (empty for a delete). */
  value: Uint8Array;
  /** `value` decoded as UTF-8. */
  readonly text: string;
  /** Raw flags: 4 = set, 8 = del. */
  flags: number;
  /** The file was set. */
  isSet: boolean;
  /** The file was deleted. */
  isDel: boolean;
}

/** What STAT returns. */
export interface DoozerStat {
  /** File rev; -2 for a directory; 0 for a missing file. */
  rev: number;
  /** Length in bytes of a file, or number of entries of a directory. */
  len: number;
  /** True when the path is a directory (rev === -2). */
  isDir: boolean;
}

/** One file found by WALK. */
export interface DoozerWalkEntry {
  /** Full path of the file. */
  path: string;
  /** The file's bytes. */
  value: Uint8Array;
  /** The file rev. */
  rev: number;
  /** `value` decoded as UTF-8. */
  readonly text: string;
}

/** Connection state of a {@link DoozerClient}. */
export type DoozerConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed';

/**
 * The first connection is up (and ACCESS done). It happens inside
 * `connect()`, before the caller holds the client: an EventEmitter listener
 * added afterwards never sees it, but `state$` replays it.
 */
export interface DoozerConnectedEvent {
  readonly type: 'connected';
  readonly address: string;
}
/** The connection dropped; `reason` tells why. Outstanding requests were rejected. */
export interface DoozerDisconnectedEvent {
  readonly type: 'disconnected';
  readonly address: string;
  readonly reason: Error;
}
/** A new connection is up after a drop (and ACCESS done); queued requests go out now. */
export interface DoozerReconnectedEvent {
  readonly type: 'reconnected';
  readonly address: string;
}
/** `close()` was called; the client is finished. */
export interface DoozerClosedEvent {
  readonly type: 'closed';
}

/** Everything `state$` emits and the client's events carry. */
export type DoozerConnectionEvent =
  DoozerConnectedEvent | DoozerDisconnectedEvent | DoozerReconnectedEvent | DoozerClosedEvent;

/** Event map of the client's EventEmitter: event name -> listener arguments. */
export interface DoozerClientEventMap {
  connected: [DoozerConnectedEvent];
  disconnected: [DoozerDisconnectedEvent];
  reconnected: [DoozerReconnectedEvent];
  closed: [DoozerClosedEvent];
}

/** Counters of a client's bookkeeping, for tests and diagnostics. */
export interface DoozerClientStats {
  /** Tags reserved on the current connection (sent, not answered yet), abandoned ones included. */
  reservedTags: number;
  /** Of those, requests already rejected by timeout/abort whose answer is still awaited. */
  abandoned: number;
  /** Requests waiting for a (re)connection. */
  queued: number;
}

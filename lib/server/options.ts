/**
 * The options of the embedded server: what each means, its default, and
 * the checks `DoozerServer.start()` makes before it listens.
 */
import { randomBytes } from 'node:crypto';
import { DEFAULT_MAX_FRAME_BYTES, isValidPathComponent } from '../wire/index.js';
import { DEFAULT_MAX_PATH_BYTES, DEFAULT_MAX_PATH_DEPTH } from './request-limits.js';

/** Options of {@link DoozerServer.start}. */
export interface DoozerServerOptions {
  /** Address to listen on. Default `'127.0.0.1'`. */
  host?: string;
  /**
   * The host name or address clients are told to dial: it goes into {@link
   * DoozerServer.uri}, {@link DoozerServer.address}, `/ctl/node/<id>/addr`
   * and `/ctl/ns/<cluster>/<id>`, with the bound port. Default: the bound
   * address. Set it when binding a wildcard address (`0.0.0.0`, `::`), which
   * no client can dial; without it such a bind logs a `warn` line.
   */
  advertiseHost?: string;
  /** Port to listen on; `0` (the default) picks a free one. */
  port?: number;
  /** Revs of history kept; a request pinned to an older rev gets TOO_LATE. Default 2000 (as doozerd `-hist`). */
  history?: number;
  /** Read-write secret (doozerd's `DOOZER_RWSECRET`). Default none. */
  rwSecret?: string;
  /** Read-only secret (doozerd's `DOOZER_ROSECRET`). Default none. */
  roSecret?: string;
  /** Cluster name, stored in `/ctl/name` and used in `/ctl/ns/<name>/<node id>`. Default `'local'`. */
  clusterName?: string;
  /** The node id SELF answers. Default: a random 16-character id like doozerd's. */
  nodeId?: string;
  /**
   * Period of the node's heartbeat write (`/ctl/node/<id>/applied`), as
   * doozerd's `-pulse`. Default 1000; `0` or `false` turns it off.
   */
  heartbeatMs?: number | false;
  /** Largest request frame accepted; a client sending a bigger one is disconnected. Default 16 MiB. */
  maxFrameBytes?: number;
  /**
   * Longest path or glob a request may carry, in bytes. A request whose
   * `path` field is longer is answered BAD_PATH (detail `path of N bytes
   * exceeds maxPathBytes (M)`), whatever its verb, before the frame is even
   * decoded; doozerd has no such limit. Default 4096. It must leave room for
   * the node's own `/ctl` paths.
   */
  maxPathBytes?: number;
  /**
   * Most components (the number of `/`) a path or glob may have; past it a
   * request is answered BAD_PATH (detail `path of N components exceeds
   * maxPathDepth (M)`), whatever its verb. doozerd has no such limit.
   * Default 64; at least 4 (`/ctl/node/<id>/addr`).
   */
  maxPathDepth?: number;
  /**
   * Most answer bytes that may wait unwritten on one connection. A client
   * that stops reading while its WAITs keep coming due is disconnected
   * (one `warn` line) once its answers pass this, and its waits are freed.
   * Default `4 * maxFrameBytes`.
   */
  maxWriteBufferBytes?: number;
  /**
   * Most memory that answers not yet read may hold server-wide: every
   * connection's unwritten answer bytes, with a large value shared by many
   * answers (one file fanned out to many WAITs) counted once. Past it the
   * server closes the connections with the most unwritten answer bytes, the
   * slowest readers, one `warn` line each, until it is back within.
   * Default `16 * maxFrameBytes` (256 MiB).
   */
  maxTotalWriteBufferBytes?: number;
  /**
   * Most requests (WAITs, future-rev reads) waiting server-wide; a
   * connection that parks one more is disconnected (one `warn` line).
   * Default 1,000,000. (One connection may park at most 100,000.)
   */
  maxWaiting?: number;
  /**
   * Answer TAG_IN_USE to a request that reuses the tag of one still waiting
   * on the same connection. doozerd 0.9 does not check tags (both requests
   * are served, each answered with that tag), so the default is `false`.
   */
  checkTags?: boolean;
  /**
   * Where the server reports what it does: `info` gets one line when
   * {@link DoozerServer.start} listens; `warn` one line per connection it
   * closes and one for a wildcard bind without `advertiseHost`. Default: silent.
   */
  logger?: { info?(message: string): void; warn?(message: string): void };
}

/** The options with every default applied. */
export interface Resolved {
  host: string;
  advertiseHost: string | undefined;
  port: number;
  history: number;
  rwSecret: string;
  roSecret: string;
  clusterName: string;
  nodeId: string | undefined;
  heartbeatMs: number;
  maxFrameBytes: number;
  maxPathBytes: number;
  maxPathDepth: number;
  maxWriteBufferBytes: number;
  maxTotalWriteBufferBytes: number;
  maxWaiting: number;
  checkTags: boolean;
  logger: NonNullable<DoozerServerOptions['logger']>;
}

/** Applies the defaults and checks `o`; a `RangeError` names what is wrong. */
export function resolve(o: DoozerServerOptions): Resolved {
  const heartbeatMs = o.heartbeatMs === false || o.heartbeatMs === undefined ? 0 : o.heartbeatMs;
  const maxFrameBytes = o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const r: Resolved = {
    host: o.host ?? '127.0.0.1',
    advertiseHost: o.advertiseHost,
    port: o.port ?? 0,
    history: o.history ?? 2000,
    rwSecret: o.rwSecret ?? '',
    roSecret: o.roSecret ?? '',
    clusterName: o.clusterName ?? 'local',
    nodeId: o.nodeId,
    heartbeatMs: o.heartbeatMs === undefined ? 1000 : heartbeatMs,
    maxFrameBytes,
    maxPathBytes: o.maxPathBytes ?? DEFAULT_MAX_PATH_BYTES,
    maxPathDepth: o.maxPathDepth ?? DEFAULT_MAX_PATH_DEPTH,
    maxWriteBufferBytes: o.maxWriteBufferBytes ?? 4 * maxFrameBytes,
    maxTotalWriteBufferBytes: o.maxTotalWriteBufferBytes ?? 16 * maxFrameBytes,
    maxWaiting: o.maxWaiting ?? 1_000_000,
    checkTags: o.checkTags ?? false,
    logger: o.logger ?? {},
  };
  if (!Number.isInteger(r.port) || r.port < 0 || r.port > 65535) {
    throw new RangeError(`port must be an integer from 0 to 65535, got ${r.port}`);
  }
  if (!Number.isSafeInteger(r.history) || r.history < 0) {
    throw new RangeError(`history must be a non-negative integer, got ${r.history}`);
  }
  if (!Number.isFinite(r.heartbeatMs) || r.heartbeatMs < 0) {
    throw new RangeError(
      `heartbeatMs must be a non-negative number or false, got ${r.heartbeatMs}`,
    );
  }
  const positive = [
    'maxFrameBytes',
    'maxPathBytes',
    'maxPathDepth',
    'maxWriteBufferBytes',
    'maxTotalWriteBufferBytes',
    'maxWaiting',
  ] as const;
  for (const key of positive) {
    if (!Number.isSafeInteger(r[key]) || r[key] < 1) {
      throw new RangeError(`${key} must be a positive integer, got ${r[key]}`);
    }
  }
  if (r.advertiseHost !== undefined && !/^[a-zA-Z0-9.:-]+$/.test(r.advertiseHost)) {
    throw new RangeError(
      `advertiseHost must be a host name or an IP address (IPv6 without brackets), got ${JSON.stringify(r.advertiseHost)}`,
    );
  }
  if (!isValidPathComponent(r.clusterName)) {
    throw new RangeError(
      `clusterName must be a valid Doozer path component, got ${JSON.stringify(r.clusterName)}`,
    );
  }
  if (r.nodeId !== undefined && !isValidPathComponent(r.nodeId)) {
    throw new RangeError(
      `nodeId must be a valid Doozer path component, got ${JSON.stringify(r.nodeId)}`,
    );
  }
  checkCtlPaths(r);
  return r;
}

/** The path limits must admit the `/ctl` files the node writes (and clients read). */
function checkCtlPaths(r: Resolved): void {
  const id = r.nodeId ?? 'X'.repeat(RANDOM_NODE_ID_LENGTH);
  const longest = Math.max(
    `/ctl/ns/${r.clusterName}/${id}`.length,
    `/ctl/node/${id}/hostname`.length,
  );
  if (r.maxPathBytes < longest) {
    throw new RangeError(
      `maxPathBytes must be at least ${longest} (the longest /ctl path this node writes), got ${r.maxPathBytes}`,
    );
  }
  if (r.maxPathDepth < 4) {
    throw new RangeError(
      `maxPathDepth must be at least 4 (/ctl/node/<id>/addr), got ${r.maxPathDepth}`,
    );
  }
}

const RANDOM_NODE_ID_LENGTH = 16;

/** Like doozerd's: 80 random bits in base32 (16 characters of A-Z2-7). */
export function randomNodeId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = randomBytes(10);
  let bits = 0;
  let acc = 0;
  let out = '';
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += alphabet[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

/**
 * `doozer:?ca=HOST:PORT&ca=...&sk=SECRET&cn=NAME&un=ID` URIs. The secret is
 * kept in a private field and never printed: `toString()`, `toJSON()` and
 * `util.inspect` show `sk=***`.
 */
import { isIPv6 } from 'node:net';
import { inspect } from 'node:util';
import { DEFAULT_PORT, isValidPathComponent } from '../wire/index.js';
import { DoozerUriError } from './errors.js';

/** One node address of a URI. */
export interface DoozerAddress {
  /** Host name or IP address (IPv6 without brackets). */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
}

const PREFIX = 'doozer:?';
const KNOWN = new Set(['ca', 'sk', 'cn', 'un']);
const HOST_RE = /^[A-Za-z0-9._-]+$/;
const PORT_RE = /^[0-9]{1,5}$/;

/** `host:port`, with IPv6 hosts in brackets (`[::1]:8046`). */
export function formatAddress(address: DoozerAddress): string {
  return address.host.includes(':')
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

function parsePort(text: string, what: string): number {
  const port = PORT_RE.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new DoozerUriError(
      `${what}: port ${JSON.stringify(text)} is not a number from 1 to 65535`,
    );
  }
  return port;
}

/**
 * Parses `host`, `host:port`, `[v6]` or `[v6]:port` (default port 8046).
 * `what` names the source in error messages, e.g. `ca="..."`.
 */
export function parseAddress(
  text: string,
  what = `address ${JSON.stringify(text)}`,
): DoozerAddress {
  if (text === '') throw new DoozerUriError(`${what}: empty address`);
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    const host = close > 0 ? text.slice(1, close) : '';
    if (!isIPv6(host))
      throw new DoozerUriError(`${what}: ${JSON.stringify(text)} is not a valid [IPv6] address`);
    const rest = text.slice(close + 1);
    if (rest === '') return { host, port: DEFAULT_PORT };
    if (!rest.startsWith(':'))
      throw new DoozerUriError(`${what}: unexpected ${JSON.stringify(rest)} after "]"`);
    return { host, port: parsePort(rest.slice(1), what) };
  }
  if (isIPv6(text)) {
    throw new DoozerUriError(
      `${what}: an IPv6 address must be written in brackets, e.g. [${text}]:${DEFAULT_PORT}`,
    );
  }
  const colon = text.lastIndexOf(':');
  const host = colon < 0 ? text : text.slice(0, colon);
  if (!HOST_RE.test(host))
    throw new DoozerUriError(`${what}: ${JSON.stringify(host)} is not a valid host`);
  return { host, port: colon < 0 ? DEFAULT_PORT : parsePort(text.slice(colon + 1), what) };
}

let secretOf: (uri: DoozerUri) => string | undefined;

/**
 * A parsed `doozer:` URI. Holds the addresses, the cluster name and whether a
 * secret was given; the secret itself is private and redacted everywhere.
 */
export class DoozerUri {
  static {
    secretOf = (uri) => uri.#secret;
  }

  readonly #secret: string | undefined;
  /** The `ca=` node addresses, in URI order. */
  readonly addresses: readonly DoozerAddress[];
  /** The `cn=` cluster name, if any. */
  readonly clusterName: string | undefined;
  /** The `un=` value, if any (kept for compatibility; unused by the client). */
  readonly un: string | undefined;

  private constructor(
    addresses: DoozerAddress[],
    clusterName: string | undefined,
    un: string | undefined,
    secret: string | undefined,
  ) {
    this.addresses = Object.freeze(addresses);
    this.clusterName = clusterName;
    this.un = un;
    this.#secret = secret;
  }

  /** Parses a URI; throws {@link DoozerUriError} naming what is wrong (never the secret). */
  static parse(uri: string): DoozerUri {
    if (typeof uri !== 'string') throw new DoozerUriError('a Doozer URI must be a string');
    if (!uri.startsWith(PREFIX)) {
      throw new DoozerUriError(`a Doozer URI must start with "${PREFIX}"`);
    }
    const params = new URLSearchParams(uri.slice(PREFIX.length));
    const addresses: DoozerAddress[] = [];
    const single = new Map<string, string>();
    /** Whether cn= came after sk= (then it may be the tail of a secret holding an unescaped "&"). */
    let cnAfterSecret = false;
    const hidden = (what: string): DoozerUriError =>
      new DoozerUriError(
        `${what} after sk= (not shown: it may be part of the secret; write "&" in a secret as %26)`,
      );
    for (const [key, value] of params) {
      if (!KNOWN.has(key)) {
        // After sk=, an unknown "key" may be the tail of a secret holding an
        // unescaped "&": never name it.
        throw new DoozerUriError(
          single.has('sk')
            ? 'unknown Doozer URI parameter after sk= (not shown: it may be part of the secret; write "&" in a secret as %26)'
            : `unknown Doozer URI parameter ${JSON.stringify(key)} (known: ca, sk, cn, un)`,
        );
      }
      if (key === 'ca') {
        try {
          addresses.push(parseAddress(value, `ca=${JSON.stringify(value)}`));
        } catch (e) {
          if (single.has('sk') && e instanceof DoozerUriError) throw hidden('invalid ca= address');
          throw e;
        }
        continue;
      }
      if (key === 'cn') cnAfterSecret = single.has('sk');
      if (single.has(key))
        throw new DoozerUriError(`Doozer URI parameter ${key}= is given more than once`);
      if (value === '') throw new DoozerUriError(`Doozer URI parameter ${key}= is empty`);
      single.set(key, value);
    }
    const cn = single.get('cn');
    if (cn !== undefined && !isValidPathComponent(cn)) {
      if (cnAfterSecret) throw hidden('invalid cn= cluster name');
      throw new DoozerUriError(
        `cluster name cn=${JSON.stringify(cn)} may hold only letters, digits, "." and "-"`,
      );
    }
    if (addresses.length === 0 && cn === undefined) {
      throw new DoozerUriError('a Doozer URI needs at least one ca= address or a cn= cluster name');
    }
    return new DoozerUri(addresses, cn, single.get('un'), single.get('sk'));
  }

  /** True when the URI carries an `sk=` secret. */
  get hasSecret(): boolean {
    return this.#secret !== undefined;
  }

  /** The same URI with other addresses (used after a `cn=` lookup); the secret is kept. */
  withAddresses(addresses: readonly DoozerAddress[]): DoozerUri {
    return new DoozerUri([...addresses], this.clusterName, this.un, this.#secret);
  }

  /** The URI with the secret shown as `sk=***`. */
  toString(): string {
    const parts = this.addresses.map((a) => `ca=${formatAddress(a)}`);
    if (this.clusterName !== undefined) parts.push(`cn=${this.clusterName}`);
    if (this.un !== undefined) parts.push(`un=${encodeURIComponent(this.un)}`);
    if (this.#secret !== undefined) parts.push('sk=***');
    return PREFIX + parts.join('&');
  }

  /** JSON form: the redacted string. */
  toJSON(): string {
    return this.toString();
  }

  /** `util.inspect` form: the redacted string. */
  [inspect.custom](): string {
    return `DoozerUri(${this.toString()})`;
  }
}

/** Parses a `doozer:` URI. Throws {@link DoozerUriError} (which never contains the secret). */
export function parseDoozerUri(uri: string): DoozerUri {
  return DoozerUri.parse(uri);
}

/** The secret of a URI. Internal to the client: not exported from the package. */
export function uriSecret(uri: DoozerUri): string | undefined {
  return secretOf(uri);
}

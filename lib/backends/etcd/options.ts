/** Options of the etcd backend, the `etcd://` connection string, and their checks. */
import { ElectionConfigError } from '../../election/errors.js';

/** TLS files for the connection to etcd (PEM). */
export interface EtcdTlsOptions {
  /** The CA that signed the members' certificates. */
  readonly caFile: string;
  /** Client certificate and key, for clusters that check client certificates. */
  readonly certFile?: string;
  readonly keyFile?: string;
}

/** How to reach etcd. */
export interface EtcdStoreOptions {
  /** Client endpoints: `host:port` (or `http://host:port`, `https://host:port`). At least one. */
  readonly endpoints: readonly string[];
  /**
   * Key prefix put before every election's name (default `''`). An election
   * named `jobs` keeps its keys under `<prefix>jobs/`; a prefix that does not
   * end in `/` gets one, so `apps` means keys under `apps/jobs/`.
   */
  readonly prefix?: string;
  /** etcd user and password (etcd's own authentication). The password is never logged or shown. */
  readonly auth?: { readonly username: string; readonly password: string };
  /** TLS to the members (then endpoints may name `https://`). */
  readonly tls?: EtcdTlsOptions;
  /** How long connecting (and the first request) may take, in ms. Default 5000. */
  readonly dialTimeoutMs?: number;
}

/** Options after checking, with defaults. */
export interface ResolvedEtcdOptions {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly auth?: { readonly username: string; readonly password: string };
  readonly tls?: EtcdTlsOptions;
  readonly dialTimeoutMs: number;
}

const HOST_PORT = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

function checkEndpoint(raw: string): string {
  const m = /^(https?:\/\/)?(.*)$/.exec(raw);
  const hostPort = m?.[2] ?? '';
  const port = HOST_PORT.exec(hostPort)?.[1];
  if (!port || Number(port) < 1 || Number(port) > 65535) {
    throw new ElectionConfigError(
      'endpoints',
      `${JSON.stringify(raw)} is not host:port (a port from 1 to 65535)`,
    );
  }
  return raw;
}

const hasControl = (s: string): boolean =>
  [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

/** Checks options and applies defaults; throws {@link ElectionConfigError} naming the option. */
export function resolveEtcdOptions(options: EtcdStoreOptions): ResolvedEtcdOptions {
  if (!options || !Array.isArray(options.endpoints) || options.endpoints.length === 0) {
    throw new ElectionConfigError('endpoints', 'at least one etcd endpoint (host:port) is needed');
  }
  const endpoints = options.endpoints.map((e) => checkEndpoint(String(e)));
  let prefix = options.prefix ?? '';
  if (typeof prefix !== 'string' || hasControl(prefix)) {
    throw new ElectionConfigError(
      'prefix',
      'the key prefix must be a string without control characters',
    );
  }
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
  const auth = options.auth;
  if (auth !== undefined) {
    if (typeof auth.username !== 'string' || auth.username === '') {
      throw new ElectionConfigError('auth', 'a user name is needed with a password');
    }
    if (typeof auth.password !== 'string') {
      throw new ElectionConfigError('auth', 'the password must be a string');
    }
  }
  const dialTimeoutMs = options.dialTimeoutMs ?? 5000;
  if (!Number.isFinite(dialTimeoutMs) || dialTimeoutMs <= 0) {
    throw new ElectionConfigError(
      'dialTimeoutMs',
      `must be a positive number of ms, not ${String(dialTimeoutMs)}`,
    );
  }
  if (
    options.tls !== undefined &&
    (typeof options.tls.caFile !== 'string' || !options.tls.caFile)
  ) {
    throw new ElectionConfigError('tls', 'caFile is needed for TLS');
  }
  return {
    endpoints,
    prefix,
    ...(auth ? { auth: { username: auth.username, password: auth.password } } : {}),
    ...(options.tls ? { tls: options.tls } : {}),
    dialTimeoutMs,
  };
}

const decode = (s: string, what: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ElectionConfigError('uri', `bad percent-encoding in the ${what}`);
  }
};

/**
 * Parses `etcd://[user:password@]host:port[,host:port...][/prefix]`.
 * Errors never repeat the string (it may hold a password).
 */
export function parseEtcdUri(uri: string): EtcdStoreOptions {
  if (typeof uri !== 'string' || !uri.startsWith('etcd://')) {
    throw new ElectionConfigError('uri', 'an etcd connection string starts with etcd://');
  }
  const rest = uri.slice('etcd://'.length);
  const at = rest.lastIndexOf('@', rest.indexOf('/') === -1 ? undefined : rest.indexOf('/'));
  const userInfo = at === -1 ? undefined : rest.slice(0, at);
  const afterAuth = at === -1 ? rest : rest.slice(at + 1);
  const slash = afterAuth.indexOf('/');
  const hosts = slash === -1 ? afterAuth : afterAuth.slice(0, slash);
  const path = slash === -1 ? '' : afterAuth.slice(slash + 1);
  if (hosts === '') throw new ElectionConfigError('uri', 'no host:port after etcd://');
  if (/[?#]/.test(path) || /[?#]/.test(hosts)) {
    throw new ElectionConfigError('uri', 'an etcd connection string takes no query or fragment');
  }
  let auth: EtcdStoreOptions['auth'];
  if (userInfo !== undefined) {
    const colon = userInfo.indexOf(':');
    if (colon === -1) throw new ElectionConfigError('uri', 'user info must be user:password');
    auth = {
      username: decode(userInfo.slice(0, colon), 'user name'),
      password: decode(userInfo.slice(colon + 1), 'password'),
    };
  }
  const endpoints = hosts.split(',');
  for (const e of endpoints) {
    if (!HOST_PORT.test(e)) {
      throw new ElectionConfigError('uri', `${JSON.stringify(e)} is not host:port`);
    }
  }
  return { endpoints, prefix: decode(path, 'prefix'), ...(auth ? { auth } : {}) };
}

/** The options as one can show them: `etcd://user:***@host:port,.../prefix`. */
export function describeEtcd(options: ResolvedEtcdOptions): string {
  const user = options.auth ? `${encodeURIComponent(options.auth.username)}:***@` : '';
  const hosts = options.endpoints.map((e) => e.replace(/^https?:\/\//, '')).join(',');
  return `etcd://${user}${hosts}/${options.prefix}${options.tls ? ' (tls)' : ''}`;
}

/** Removes the password from a message (should a driver ever echo it). */
export function redactor(options: ResolvedEtcdOptions): (s: string) => string {
  const secret = options.auth?.password;
  if (!secret) return (s) => s;
  return (s) => s.split(secret).join('***');
}

/**
 * Choosing a backend by the scheme of a URI, for the Nest module and the
 * CLI alike: `doozer:?ca=...`, `etcd://...`, `postgres://...` (or
 * `postgresql://`). Parsing never repeats a password: errors name the
 * scheme or the part at fault, and {@link parseStoreUri} gives the URI as
 * one can show it.
 */
import { ElectionConfigError } from '../election/errors.js';
import type { ElectionStore } from '../election/port.js';
import { parseEtcdUri } from './etcd/options.js';
import { EtcdDriverMissingError } from './etcd/errors.js';
import { EtcdElectionStore } from './etcd/store.js';
import { PostgresDriverMissingError } from './postgres/errors.js';
import { createPostgresStore } from './postgres/store.js';

/** The backend a URI's scheme chooses. */
export type StoreScheme = 'doozer' | 'etcd' | 'postgres';

/** The backends other than Doozer, opened by {@link openUriStore}. */
export type UriStoreKind = Exclude<StoreScheme, 'doozer'>;

/** The schemes understood, as they are written, for messages. */
export const STORE_SCHEMES: readonly string[] = [
  'doozer:',
  'etcd://',
  'postgres://',
  'postgresql://',
];

const SCHEMES: Readonly<Record<string, StoreScheme>> = {
  doozer: 'doozer',
  etcd: 'etcd',
  postgres: 'postgres',
  postgresql: 'postgres',
};

/**
 * The backend chosen by the scheme of `uri`.
 * @throws ElectionConfigError naming `option`, the scheme (never the rest of
 *   the URI) and the choices, for a URI without a known scheme.
 */
export function storeSchemeOf(uri: unknown, option = 'uri'): StoreScheme {
  const choices = `expected one of ${STORE_SCHEMES.join(', ')}`;
  if (typeof uri !== 'string' || uri === '') {
    throw new ElectionConfigError(option, `must be a non-empty URI string; ${choices}`);
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri)?.[1];
  if (scheme === undefined) throw new ElectionConfigError(option, `has no scheme; ${choices}`);
  const kind = SCHEMES[scheme.toLowerCase()];
  if (kind === undefined) {
    throw new ElectionConfigError(
      option,
      `unknown scheme ${JSON.stringify(`${scheme}:`)}; ${choices}`,
    );
  }
  return kind;
}

/** An etcd or PostgreSQL URI, checked, with the forms in which one may show it. */
export interface ParsedStoreUri {
  readonly kind: UriStoreKind;
  /** The URI as one can show it (password as `***`). */
  readonly shown: string;
  /** The URI without its password. */
  readonly bare: string;
  /** The password as given and as encoded (a message may hold either). */
  readonly secrets: readonly string[];
}

/**
 * Checks an `etcd://` or `postgres://` URI.
 * @throws ElectionConfigError (option `uri`), never repeating the URI.
 */
export function parseStoreUri(kind: UriStoreKind, text: string): ParsedStoreUri {
  return kind === 'etcd' ? etcdUri(text) : postgresUri(text);
}

/** Replaces every secret of `uri` in `text` with `***`. */
export function redactSecrets(uri: ParsedStoreUri, text: string): string {
  let out = text;
  for (const s of uri.secrets) out = out.split(s).join('***');
  return out;
}

/** A store that its opener owns and closes. */
export type ClosableElectionStore = ElectionStore & { close(): Promise<void> };

/** Options of {@link openUriStore}. */
export interface OpenUriStoreOptions {
  /** Limit of connecting (etcd's `dialTimeoutMs`, PostgreSQL's `connectTimeoutMs`). */
  readonly connectTimeoutMs?: number | undefined;
}

/**
 * Opens the etcd or PostgreSQL store of a URI (its caller closes it). A
 * driver package that is not installed rejects with the backend's typed
 * error naming it (`EtcdDriverMissingError`, `PostgresDriverMissingError`).
 */
export async function openUriStore(
  kind: UriStoreKind,
  text: string,
  options: OpenUriStoreOptions = {},
): Promise<ClosableElectionStore> {
  const timeout = options.connectTimeoutMs;
  if (kind === 'etcd') {
    return EtcdElectionStore.connect({
      ...parseEtcdUri(text),
      ...(timeout === undefined ? {} : { dialTimeoutMs: timeout }),
    });
  }
  return createPostgresStore({
    connectionString: text,
    ...(timeout === undefined ? {} : { connectTimeoutMs: timeout }),
  });
}

/**
 * `etcd://[user:password@]host:port[,...][/prefix]`. Without its password the
 * user info goes as a whole (an `etcd://` URI takes `user:password` or
 * nothing), so the bare form is `etcd://host:port[,...][/prefix]`.
 */
function etcdUri(text: string): ParsedStoreUri {
  const parsed = parseEtcdUri(text);
  const rest = text.slice('etcd://'.length);
  const firstSlash = rest.indexOf('/');
  const at = rest.lastIndexOf('@', firstSlash === -1 ? undefined : firstSlash);
  if (at === -1 || !parsed.auth) {
    return { kind: 'etcd', shown: text, bare: text, secrets: [] };
  }
  const user = rest.slice(0, rest.indexOf(':'));
  const after = rest.slice(at + 1);
  const secrets = secretForms(parsed.auth.password, rest.slice(rest.indexOf(':') + 1, at));
  return {
    kind: 'etcd',
    shown: `etcd://${user}:***@${after}`,
    bare: `etcd://${after}`,
    secrets,
  };
}

/** `postgres://user:password@host:port/db?...` (also `postgresql://`, and `?password=`). */
function postgresUri(text: string): ParsedStoreUri {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ElectionConfigError(
      'uri',
      'not a valid URL (expected postgres://user:password@host:port/database)',
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ElectionConfigError(
      'uri',
      `scheme ${JSON.stringify(url.protocol)}; expected postgres: or postgresql:`,
    );
  }
  if (url.hostname === '') throw new ElectionConfigError('uri', 'no host after postgres://');
  const secrets: string[] = [];
  if (url.password !== '') secrets.push(...secretForms(safeDecode(url.password), url.password));
  const queryPassword = url.searchParams.get('password');
  if (queryPassword) secrets.push(...secretForms(queryPassword, encodeURIComponent(queryPassword)));
  const shownUrl = new URL(text);
  const bareUrl = new URL(text);
  if (url.password !== '') {
    shownUrl.password = '***';
    bareUrl.password = '';
  }
  if (queryPassword !== null) {
    shownUrl.searchParams.set('password', '***');
    bareUrl.searchParams.delete('password');
  }
  const shown = shownUrl.toString().replace(/%2A%2A%2A/g, '***');
  return { kind: 'postgres', shown, bare: bareUrl.toString(), secrets };
}

/** A password as given and as encoded in the URI. */
function secretForms(decoded: string, encoded: string): string[] {
  return [...new Set([decoded, encoded].filter((s) => s.length > 0))];
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** True for the typed error of a backend whose driver package is not installed. */
export function isDriverMissingError(err: unknown): boolean {
  return err instanceof EtcdDriverMissingError || err instanceof PostgresDriverMissingError;
}

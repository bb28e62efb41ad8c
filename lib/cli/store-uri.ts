/**
 * The non-Doozer backends of `elect-run-command`: `--etcd-uri` and
 * `--postgres-uri`. A {@link StoreUri} holds the connection string with its
 * password, but prints without it: `toString()` shows `***` in its place.
 */
import { ElectionConfigError } from '../election/errors.js';
import { parseEtcdUri } from '../backends/etcd/options.js';
import { UsageError } from './usage-error.js';

/** The backends chosen by a flag of their own. */
export type StoreKind = 'etcd' | 'postgres';

/** The flag choosing each backend. */
export const STORE_FLAGS: Readonly<Record<StoreKind, string>> = {
  etcd: '--etcd-uri',
  postgres: '--postgres-uri',
};

/** The variable in which the hooks and the `--run` child find the URI in use. */
export const STORE_ENV: Readonly<Record<StoreKind, string>> = {
  etcd: 'ETCD_URI',
  postgres: 'POSTGRES_URI',
};

/** A validated etcd or PostgreSQL connection string. */
export class StoreUri {
  readonly #text: string;
  readonly #secrets: readonly string[];
  /** The URI as one can show it (password as `***`). */
  readonly shown: string;
  /** The URI without its password, for hooks and the child. */
  readonly bare: string;

  private constructor(
    readonly kind: StoreKind,
    text: string,
    shown: string,
    bare: string,
    secrets: readonly string[],
  ) {
    this.#text = text;
    this.shown = shown;
    this.bare = bare;
    this.#secrets = secrets;
  }

  /** The flag that chose this backend. */
  get flag(): string {
    return STORE_FLAGS[this.kind];
  }

  /** The URI with its password: only for connecting, or for `--pass-store-password`. */
  reveal(): string {
    return this.#text;
  }

  /** Replaces every secret of the URI in `text` with `***`. */
  redact(text: string): string {
    let out = text;
    for (const s of this.#secrets) out = out.split(s).join('***');
    return out;
  }

  toString(): string {
    return this.shown;
  }

  toJSON(): string {
    return this.shown;
  }

  /**
   * Parses the value of `--etcd-uri` or `--postgres-uri`.
   * @throws UsageError naming the flag, never repeating the URI.
   */
  static parse(kind: StoreKind, text: string): StoreUri {
    try {
      return kind === 'etcd' ? etcdUri(text) : postgresUri(text);
    } catch (e) {
      if (e instanceof ElectionConfigError) {
        const message = e.message.replace(/^(uri|connectionString): /, '');
        throw new UsageError(`bad ${STORE_FLAGS[kind]}: ${message}`);
      }
      throw e;
    }
  }

  /** @internal */
  static make(
    kind: StoreKind,
    text: string,
    shown: string,
    bare: string,
    secrets: readonly string[],
  ): StoreUri {
    return new StoreUri(kind, text, shown, bare, secrets);
  }
}

/** The flags {@link storeFromFlags} looks at. */
export interface StoreFlags {
  readonly doozerUri?: string;
  readonly doozerBootUri?: string;
  readonly passDoozerSecret?: true;
  readonly etcdUri?: string;
  readonly postgresUri?: string;
  readonly passStorePassword?: true;
}

/**
 * The backend chosen by `--etcd-uri` or `--postgres-uri`, if any. One
 * backend a command line: two of these flags, or one with a Doozer flag, is
 * a usage error naming them; so is `--pass-store-password` without either.
 * (`$DOOZER_URI` in the environment is ignored when a store flag is given.)
 */
export function storeFromFlags(o: StoreFlags): StoreUri | undefined {
  const chosen = [
    o.doozerUri !== undefined ? '--doozer-uri' : undefined,
    o.etcdUri !== undefined ? '--etcd-uri' : undefined,
    o.postgresUri !== undefined ? '--postgres-uri' : undefined,
  ].filter((f): f is string => f !== undefined);
  if (chosen.length > 1) {
    throw new UsageError(`${chosen.join(' and ')} exclude each other: choose one backend`);
  }
  const text = o.etcdUri ?? o.postgresUri;
  if (text === undefined) {
    if (o.passStorePassword) {
      throw new UsageError('--pass-store-password needs --etcd-uri or --postgres-uri');
    }
    return undefined;
  }
  const flag = o.etcdUri !== undefined ? '--etcd-uri' : '--postgres-uri';
  for (const [given, doozerFlag] of [
    [o.doozerBootUri, '--doozer-boot-uri'],
    [o.passDoozerSecret, '--pass-doozer-secret'],
  ] as const) {
    if (given !== undefined) throw new UsageError(`${doozerFlag} is for Doozer: not with ${flag}`);
  }
  return StoreUri.parse(o.etcdUri !== undefined ? 'etcd' : 'postgres', text);
}

/**
 * `etcd://[user:password@]host:port[,...][/prefix]`. Without its password the
 * user info goes as a whole (an `etcd://` URI takes `user:password` or
 * nothing), so the child gets `etcd://host:port[,...][/prefix]`.
 */
function etcdUri(text: string): StoreUri {
  const parsed = parseEtcdUri(text);
  const rest = text.slice('etcd://'.length);
  const firstSlash = rest.indexOf('/');
  const at = rest.lastIndexOf('@', firstSlash === -1 ? undefined : firstSlash);
  if (at === -1 || !parsed.auth) return StoreUri.make('etcd', text, text, text, []);
  const user = rest.slice(0, rest.indexOf(':'));
  const after = rest.slice(at + 1);
  const secrets = secretForms(parsed.auth.password, rest.slice(rest.indexOf(':') + 1, at));
  return StoreUri.make('etcd', text, `etcd://${user}:***@${after}`, `etcd://${after}`, secrets);
}

/** `postgres://user:password@host:port/db?...` (also `postgresql://`, and `?password=`). */
function postgresUri(text: string): StoreUri {
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
  return StoreUri.make('postgres', text, shown, bareUrl.toString(), secrets);
}

/** A password as given and as encoded in the URI (a log line may hold either). */
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

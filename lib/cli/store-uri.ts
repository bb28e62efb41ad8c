/**
 * The non-Doozer backends of `elect-run-command`: `--etcd-uri` and
 * `--postgres-uri`. A {@link StoreUri} holds the connection string with its
 * password, but prints without it: `toString()` shows `***` in its place.
 */
import { ElectionConfigError } from '../election/errors.js';
import { parseStoreUri, storeSchemeOf } from '../backends/store-uri.js';
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
      const u = parseStoreUri(kind, text);
      return new StoreUri(kind, text, u.shown, u.bare, u.secrets);
    } catch (e) {
      if (e instanceof ElectionConfigError) {
        const message = e.message.replace(/^(uri|connectionString): /, '');
        throw new UsageError(`bad ${STORE_FLAGS[kind]}: ${message}`);
      }
      throw e;
    }
  }
}

/** The backend flags given (`--doozer-uri`, `--etcd-uri`, `--postgres-uri`), in that order. */
function backendFlagsGiven(o: {
  readonly doozerUri?: string;
  readonly etcdUri?: string;
  readonly postgresUri?: string;
}): string[] {
  return [
    o.doozerUri !== undefined ? '--doozer-uri' : undefined,
    o.etcdUri !== undefined ? '--etcd-uri' : undefined,
    o.postgresUri !== undefined ? '--postgres-uri' : undefined,
  ].filter((f): f is string => f !== undefined);
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
  const chosen = backendFlagsGiven(o);
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

/** The flags and variable {@link backendFromGeneralUri} looks at. */
export interface GeneralUriFlags {
  readonly uri?: string;
  readonly doozerUri?: string;
  readonly etcdUri?: string;
  readonly postgresUri?: string;
}

/** The backend flag that a URI of each scheme stands for. */
const FLAG_OF_SCHEME = {
  doozer: 'doozerUri',
  etcd: 'etcdUri',
  postgres: 'postgresUri',
} as const;

/**
 * `--uri` (or, when no backend flag is given, `$ELECTION_URI`): any
 * backend's URI, the backend chosen by its scheme (`doozer:`, `etcd://`,
 * `postgres://`, `postgresql://`). Returns which backend flag it stands for,
 * or `undefined` when neither is given (then `--doozer-uri` /
 * `$DOOZER_URI` as before).
 * @throws UsageError for `--uri` with a backend flag, or an unknown scheme
 *   (naming the scheme and the choices, never the rest of the URI).
 */
export function backendFromGeneralUri(
  o: GeneralUriFlags,
  env: NodeJS.ProcessEnv,
):
  | { readonly flag: (typeof FLAG_OF_SCHEME)[keyof typeof FLAG_OF_SCHEME]; readonly text: string }
  | undefined {
  const specific = backendFlagsGiven(o);
  if (o.uri !== undefined && specific.length > 0) {
    throw new UsageError(
      `--uri and ${specific.join(' and ')} exclude each other: choose one backend`,
    );
  }
  const fromEnv = env.ELECTION_URI === '' ? undefined : env.ELECTION_URI;
  const text = o.uri ?? (specific.length === 0 ? fromEnv : undefined);
  if (text === undefined) return undefined;
  const what = o.uri !== undefined ? '--uri' : 'ELECTION_URI';
  try {
    return { flag: FLAG_OF_SCHEME[storeSchemeOf(text, what)], text };
  } catch (e) {
    if (e instanceof ElectionConfigError) throw new UsageError(`bad ${e.message}`);
    throw e;
  }
}

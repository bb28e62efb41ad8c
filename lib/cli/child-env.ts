/**
 * The environment of the hooks and of the `--run` child: this process's,
 * with `DOOZER_URI` (and `DOOZER_BOOT_URI`) set to the URIs this process
 * uses, without their `sk=` secret unless `--pass-doozer-secret` asks for it.
 * On etcd or PostgreSQL: `ETCD_URI` or `POSTGRES_URI` without the password
 * unless `--pass-store-password`, and no `DOOZER_URI` / `DOOZER_BOOT_URI`.
 */
import { parseDoozerUri, uriSecret, type DoozerUri } from '../doozer/uri.js';
import { STORE_ENV, type StoreUri } from './store-uri.js';

/** A URI as text without its `sk=` parameter (the only place `toString()` shows it is at the end). */
export function uriWithoutSecret(uri: DoozerUri): string {
  return uri.toString().replace(/&sk=\*\*\*$/, '');
}

/** A URI as text with its secret, for a child that was explicitly given it. */
function uriWithSecret(uri: DoozerUri): string {
  const secret = uriSecret(uri);
  const bare = uriWithoutSecret(uri);
  return secret === undefined ? bare : `${bare}&sk=${encodeURIComponent(secret)}`;
}

/** What {@link childEnvironment} needs of the command line. */
export interface ChildEnvOptions {
  /** Unused when `store` is given. */
  readonly doozerUri: DoozerUri | undefined;
  /** The boot URI's text, already validated. */
  readonly doozerBootUri: string | undefined;
  /** `--pass-doozer-secret`. */
  readonly passDoozerSecret: boolean;
  /** The etcd or PostgreSQL backend, instead of Doozer. */
  readonly store?: StoreUri | undefined;
  /** `--pass-store-password`. */
  readonly passStorePassword?: boolean;
}

/**
 * `env` with `DOOZER_URI` set to the URI in use (also when it came from
 * `--doozer-uri`) and `DOOZER_BOOT_URI` to the boot URI in use (removed when
 * there is none), both without `sk=` unless `passDoozerSecret`.
 */
export function childEnvironment(env: NodeJS.ProcessEnv, opts: ChildEnvOptions): NodeJS.ProcessEnv {
  const store = opts.store;
  if (store !== undefined) {
    // DOOZER_URI would tell the child a backend this process does not use (and may hold an sk=).
    const out: NodeJS.ProcessEnv = {
      ...env,
      [STORE_ENV[store.kind]]: opts.passStorePassword ? store.reveal() : store.bare,
    };
    delete out.DOOZER_URI;
    delete out.DOOZER_BOOT_URI;
    return out;
  }
  if (opts.doozerUri === undefined) throw new TypeError('childEnvironment: no backend');
  const text = opts.passDoozerSecret ? uriWithSecret : uriWithoutSecret;
  const out: NodeJS.ProcessEnv = { ...env, DOOZER_URI: text(opts.doozerUri) };
  delete out.DOOZER_BOOT_URI;
  if (opts.doozerBootUri !== undefined) {
    out.DOOZER_BOOT_URI = text(parseDoozerUri(opts.doozerBootUri));
  }
  return out;
}

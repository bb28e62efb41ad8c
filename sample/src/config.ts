/**
 * The sample's configuration: environment variables, checked once at start
 * (by `main.ts` before anything binds, and by `ConfigModule` in the app).
 *
 * | variable                     | default       | meaning                                                              |
 * | ---------------------------- | ------------- | -------------------------------------------------------------------- |
 * | `ELECTION_URI`               | —             | the store to elect on, by scheme: `doozer:?…`, `etcd://…`, `postgres://…` |
 * | `DOOZER_URI`                 | required¹     | the Doozer to elect on, e.g. `doozer:?ca=127.0.0.1:8046`             |
 * | `DOOZER_BOOT_URI`            | —             | boot URI that resolves a `cn=` cluster name of `DOOZER_URI`          |
 * | `PORT`                       | `3000`        | HTTP port on 127.0.0.1; `0` picks a free one (logged at start)       |
 * | `ELECTION_NAME`              | `sample-jobs` | the election: file `/ns/service/master/<name>`                       |
 * | `ELECTION_LEASE_MS`          | library's     | others replace a master not seen renewing for this long (10000)      |
 * | `ELECTION_RENEW_DEADLINE_MS` | library's     | a master that could not renew for this long steps down (min(7000, 70% of the lease)) |
 * | `ELECTION_RETRY_PERIOD_MS`   | library's     | the master renews its lease this often (min(2000, renew deadline / 3.5)) |
 * | `LOG_FORMAT`                 | `text`        | `json`: one JSON object per log line                                 |
 * | `LOG_LEVEL`                  | `log`         | `debug` adds the election engine's decisions and skipped leader jobs |
 *
 * ¹ unless `ELECTION_URI` is set, which wins over it.
 */
import type { LogLevel } from '@nestjs/common';

/** The environment after {@link validateEnv}: every value checked and converted. */
export interface SampleEnv {
  /** The store to elect on, when given by `ELECTION_URI` (its scheme was checked). */
  readonly ELECTION_URI: string | undefined;
  /** The Doozer to elect on (used when `ELECTION_URI` is not set). */
  readonly DOOZER_URI: string | undefined;
  readonly DOOZER_BOOT_URI: string | undefined;
  readonly PORT: number;
  readonly ELECTION_NAME: string;
  readonly ELECTION_LEASE_MS: number | undefined;
  readonly ELECTION_RENEW_DEADLINE_MS: number | undefined;
  readonly ELECTION_RETRY_PERIOD_MS: number | undefined;
  readonly LOG_FORMAT: 'text' | 'json';
  readonly LOG_LEVEL: 'log' | 'debug';
}

/** What the application's `ConfigService` holds: the environment plus the bound HTTP port. */
export interface SampleConfig extends SampleEnv {
  /** The port the HTTP server is bound to (differs from `PORT` when that is 0). */
  readonly httpPort: number;
}

/** The backends `ELECTION_URI` can name. */
export type SampleBackend = 'doozer' | 'etcd' | 'postgres';

/** Where the election runs: the backend, chosen by the URI's scheme, and its URI. */
export interface SampleStoreTarget {
  readonly backend: SampleBackend;
  /** The URI (it may hold a password or secret: never log it). */
  readonly uri: string;
  /** Doozer only: boot URI that resolves a `cn=` cluster name. */
  readonly bootUri: string | undefined;
}

/** The backend of a URI by its scheme, or `undefined` for a scheme the sample does not know. */
export function backendOf(uri: string): SampleBackend | undefined {
  if (uri.startsWith('doozer:')) return 'doozer';
  if (uri.startsWith('etcd://')) return 'etcd';
  if (uri.startsWith('postgres://') || uri.startsWith('postgresql://')) return 'postgres';
  return undefined;
}

/** The store of a checked environment: `ELECTION_URI` if set, else `DOOZER_URI`. */
export function storeTarget(
  env: Pick<SampleEnv, 'ELECTION_URI' | 'DOOZER_URI' | 'DOOZER_BOOT_URI'>,
): SampleStoreTarget {
  if (env.ELECTION_URI === undefined) {
    if (env.DOOZER_URI === undefined) {
      throw new SampleConfigError('ELECTION_URI or DOOZER_URI is required');
    }
    return { backend: 'doozer', uri: env.DOOZER_URI, bootUri: env.DOOZER_BOOT_URI };
  }
  const backend = backendOf(env.ELECTION_URI);
  if (backend === undefined) throw new SampleConfigError('ELECTION_URI: unknown scheme');
  const bootUri = backend === 'doozer' ? env.DOOZER_BOOT_URI : undefined;
  return { backend, uri: env.ELECTION_URI, bootUri };
}

/** Default election name. */
export const DEFAULT_ELECTION_NAME = 'sample-jobs';
/** Default HTTP port. */
export const DEFAULT_PORT = 3000;
/** The only interface the sample listens on, and the host of its advertised address. */
export const LOOPBACK = '127.0.0.1';

/** A configuration error: the message names the variable and what is expected. */
export class SampleConfigError extends Error {
  override readonly name = 'SampleConfigError';
}

type RawEnv = Readonly<Record<string, unknown>>;

function text(env: RawEnv, key: string): string | undefined {
  const value = env[key];
  if (value === undefined || value === '') return undefined;
  // Strings from the environment; numbers when ConfigModule validates what it validated before.
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new SampleConfigError(`${key} must be a string (got ${typeof value})`);
  }
  return String(value);
}

function integer(env: RawEnv, key: string, min: number, max: number): number | undefined {
  const value = text(env, key);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new SampleConfigError(`${key} must be an integer from ${min} to ${max} (got "${value}")`);
  }
  return n;
}

function oneOf<T extends string>(env: RawEnv, key: string, values: readonly T[], fallback: T): T {
  const value = text(env, key) ?? fallback;
  if (!(values as readonly string[]).includes(value)) {
    throw new SampleConfigError(`${key} must be one of ${values.join(', ')} (got "${value}")`);
  }
  return value as T;
}

/**
 * Checks the environment and applies defaults; throws a
 * {@link SampleConfigError} naming the first bad variable. Used as
 * `ConfigModule.forRoot({ validate })`. The election timings are only
 * checked to be numbers here: their order (`lease > renew deadline > retry
 * period`) is checked by the library when the application is created.
 */
export function validateEnv(env: RawEnv): SampleEnv {
  const electionUri = text(env, 'ELECTION_URI');
  const uri = text(env, 'DOOZER_URI');
  if (electionUri !== undefined && backendOf(electionUri) === undefined) {
    // Never the URI itself: it may hold a password.
    throw new SampleConfigError(
      'ELECTION_URI must start with doozer:, etcd:// or postgres:// (postgresql://): the scheme chooses the backend',
    );
  }
  if (electionUri === undefined && uri === undefined) {
    throw new SampleConfigError(
      'DOOZER_URI is required (or ELECTION_URI): the Doozer to elect on, e.g. DOOZER_URI="doozer:?ca=127.0.0.1:8046" ' +
        '(for a local one run `npx doozer-dev-server`, or `npm run demo` to see everything at once), ' +
        'or another store, e.g. ELECTION_URI="etcd://127.0.0.1:2379" or ELECTION_URI="postgres://user:password@127.0.0.1:5432/db"',
    );
  }
  const ms = (key: string): number | undefined => integer(env, key, 1, 86_400_000);
  return {
    ELECTION_URI: electionUri,
    DOOZER_URI: uri,
    DOOZER_BOOT_URI: text(env, 'DOOZER_BOOT_URI'),
    PORT: integer(env, 'PORT', 0, 65535) ?? DEFAULT_PORT,
    ELECTION_NAME: text(env, 'ELECTION_NAME') ?? DEFAULT_ELECTION_NAME,
    ELECTION_LEASE_MS: ms('ELECTION_LEASE_MS'),
    ELECTION_RENEW_DEADLINE_MS: ms('ELECTION_RENEW_DEADLINE_MS'),
    ELECTION_RETRY_PERIOD_MS: ms('ELECTION_RETRY_PERIOD_MS'),
    LOG_FORMAT: oneOf(env, 'LOG_FORMAT', ['text', 'json'], 'text'),
    LOG_LEVEL: oneOf(env, 'LOG_LEVEL', ['log', 'debug'], 'log'),
  };
}

/** The Nest log levels of a `LOG_LEVEL`. */
export function logLevels(level: SampleEnv['LOG_LEVEL']): LogLevel[] {
  const base: LogLevel[] = ['fatal', 'error', 'warn', 'log'];
  return level === 'debug' ? [...base, 'debug', 'verbose'] : base;
}

import type { FactoryProvider, LoggerService, ModuleMetadata, Type } from '@nestjs/common';
import type { DoozerClient } from '../doozer/index.js';
import type { ElectionStore, MasterElectionOptions } from '../election/index.js';
import type { MasterElectionLogLevel } from './master-election.logger.js';

/**
 * The `store` option: an election store (any backend), or a function that
 * returns one (called once, at bootstrap; again after a failure with
 * `onUnreachable: 'retry'`).
 */
export type MasterElectionStoreOption =
  ElectionStore | (() => ElectionStore | Promise<ElectionStore>);

/** What `MasterElectionModule` does when Doozer cannot be reached at boot. */
export type OnUnreachable = 'fail' | 'retry';

/** The engine's options that a registration passes through, as the engine declares them. */
type EngineTimingKeys =
  | 'leaseMs'
  | 'renewDeadlineMs'
  | 'retryPeriodMs'
  | 'electionJitterMs'
  | 'respectLeaselessMaster'
  | 'clock'
  | 'beforeRelease';

/**
 * The engine's timing options (see `MasterElectionOptions` of the election
 * engine for each), derived from its type; each also admits an explicit
 * `undefined` (for `exactOptionalPropertyTypes`), meaning its default.
 * `clock` drives the engine's leases and timers (a `ManualClock` from
 * `nestjs-master-election/testing` in tests; the module's own handler
 * bound, drain and backoff timers stay on real time); `beforeRelease` runs
 * when a term ends, after the running `@MasterOnly` calls have drained and
 * before the lease is released.
 */
export type MasterElectionTimingOptions = {
  [K in EngineTimingKeys]?: MasterElectionOptions[K] | undefined;
};

/** Options of one election registered with `MasterElectionModule.forRoot()` / `forRootAsync()`. */
export interface MasterElectionModuleOptions extends MasterElectionTimingOptions {
  /**
   * Where the election lives; its scheme chooses the backend:
   * - `doozer:?ca=10.0.0.1:8046&sk=secret`: Doozer (with `bootUri` for `cn=`);
   * - `etcd://[user:password@]host:port[,host:port...][/prefix]`: etcd v3
   *   (needs the `etcd3` package);
   * - `postgres://user:password@host:port/database` (or `postgresql://`):
   *   PostgreSQL (needs the `pg` package).
   *
   * Registrations of one application that give the same `uri` (and
   * `bootUri`) share one connection (Doozer) or one store (etcd,
   * PostgreSQL), closed when the application closes. A driver package that
   * is not installed fails the boot with `EtcdDriverMissingError` or
   * `PostgresDriverMissingError` naming it; another scheme fails it with an
   * `ElectionConfigError` naming the scheme. Passwords and secrets never
   * appear in logs or errors. Give exactly one of `uri`, `client` and `store`.
   */
  uri?: string | undefined;
  /**
   * An already connected Doozer client to use instead of `uri`. It is never
   * closed by the module: its owner closes it after the application.
   */
  client?: DoozerClient | undefined;
  /**
   * The election store to run on instead of Doozer's `uri` / `client`: any
   * backend, e.g. `await EtcdElectionStore.connect('etcd://10.0.0.1:2379')`,
   * `await createPostgresStore({ connectionString })` or
   * `new DoozerElectionStore(client)`; or a function returning one (or a
   * promise of one). The module never closes it: its owner closes it after
   * the application.
   */
  store?: MasterElectionStoreOption | undefined;
  /**
   * Boot URI used to resolve a `cn=` cluster name of `uri`. Required when
   * `uri` has `cn=` and no `ca=` addresses (with `ca=` addresses, `cn=` is
   * not looked up, as in the Go client); the boot fails otherwise with an
   * `ElectionConfigError` naming `bootUri`.
   */
  bootUri?: string | undefined;
  /**
   * The election's name: one Doozer path component (letters, digits, `.`
   * and `-`). The election file is `/ns/service/master/<name>`. Also the
   * name by which decorators and `@InjectMasterElection()` select it.
   */
  name: string;
  /**
   * The `host:port` this process advertises (written to the election file)
   * while it is master. Default `${os.hostname()}:${process.pid}`: unique per
   * process, but the same for several applications in one process.
   */
  address?: string | undefined;
  /** False for a passive follower that never becomes master. Default true. */
  participating?: boolean | undefined;
  /** Force a new election once this process has joined (deposes the current master). Default false. */
  forceElectionOnStart?: boolean | undefined;
  /**
   * Limit of one connection attempt: to Doozer (default: the client's, 5000
   * ms), etcd (its `dialTimeoutMs`, default 5000) or PostgreSQL (default 10000).
   */
  connectTimeoutMs?: number | undefined;
  /**
   * When Doozer cannot be reached at boot: `'fail'` (default) fails the boot
   * with a {@link MasterElectionConnectError} naming the URI (without its
   * secret); `'retry'` lets the application boot and keeps connecting in
   * the background, starting the election once connected.
   */
  onUnreachable?: OnUnreachable | undefined;
  /**
   * How long this process's `@OnBecomeMaster` handlers of a term may run
   * before the term counts as failed: it is given up (the term's `signal`
   * aborts) so another replica can take over, a `MasterHandlerTimeoutError`
   * naming the handler is logged and goes to `@OnElectionError`, and
   * `health()` reports unhealthy until the handler settles. This process
   * takes part again only once it has. Default: `renewDeadlineMs`.
   */
  becomeMasterTimeoutMs?: number | undefined;
  /**
   * After a term whose `@OnBecomeMaster` handlers failed (or overran
   * `becomeMasterTimeoutMs`), this process sits the election out, following
   * it passively, before it takes part again: this long after the first
   * failure in a row, doubling with each further one up to
   * `failureBackoffMaxMs`, each times a random factor in [0.5, 1]. A term
   * whose handlers complete resets it. Default 1000.
   */
  failureBackoffMs?: number | undefined;
  /** The longest backoff of `failureBackoffMs`. Default 30000. */
  failureBackoffMaxMs?: number | undefined;
  /**
   * When a master term ends (shutdown, `resign()`, a lost lease), the
   * `@MasterOnly` calls still running may finish for this long before the
   * term is released (and another replica may start the same work). 0
   * releases at once (then stop the work on the term's `signal`). At most,
   * and by default, `leaseMs - renewDeadlineMs` (3000 with the default
   * lease): past that, others could take over anyway.
   */
  drainTimeoutMs?: number | undefined;
  /**
   * Where this registration logs (also the engine's lines). Default: Nest's
   * `Logger` with context `MasterElection`.
   */
  logger?: LoggerService | undefined;
  /**
   * The least severe level logged: `'debug'` shows connection chatter and
   * skipped `@MasterOnly` calls (once per term); `'silent'` logs nothing.
   * Default `'log'`.
   */
  logLevel?: MasterElectionLogLevel | undefined;
}

/** Registration-level options of `forRoot()` / `forRootAsync()`, beside the election options. */
export interface MasterElectionModuleExtras {
  /**
   * Register the module globally: its services (and `MasterElectionRegistry`)
   * are injectable in every module of the application without importing it,
   * as with `ScheduleModule`. Default true; with false, only modules that
   * import this registration can inject them.
   */
  isGlobal?: boolean;
  /**
   * This registration is the default one: `@InjectMasterElection()`, a
   * plain `MasterElectionService` injection and decorators without an
   * election name select it. Default true; at most one registration of an
   * application may be the default, so give `isDefault: false` to the others.
   */
  isDefault?: boolean;
}

/**
 * What a `forRootAsync()` factory or options class provides: the options,
 * where `name` may be left out when `forRootAsync()` was given the name.
 */
export type MasterElectionAsyncModuleOptions = Omit<MasterElectionModuleOptions, 'name'> & {
  name?: string;
};

/** A class for `forRootAsync({ useClass })` or `forRootAsync({ useExisting })`. */
export interface MasterElectionOptionsFactory {
  /**
   * Returns the options of the registration (or a promise of them), called
   * once while the module initialises. `name` may be left out when
   * `forRootAsync()` was given it. The options are checked like those of
   * `forRoot()`: bad ones fail the boot with an `ElectionConfigError`.
   */
  createMasterElectionOptions():
    MasterElectionAsyncModuleOptions | Promise<MasterElectionAsyncModuleOptions>;
}

/**
 * Options of `MasterElectionModule.forRootAsync()`: `imports`, and one of
 * `useFactory` (with `inject`), `useClass` or `useExisting`; plus the
 * registration-level options.
 */
export interface MasterElectionModuleAsyncOptions
  extends Pick<ModuleMetadata, 'imports'>, MasterElectionModuleExtras {
  /**
   * The election name, known statically, so that `@InjectMasterElection(name)`
   * can select this registration (required with `isDefault: false`). The
   * provided options may then leave `name` out; if they give it, it must be
   * the same.
   */
  name?: string;
  /** Returns the options; its arguments are the providers named by `inject`. */
  useFactory?: (
    ...args: never[]
  ) => MasterElectionAsyncModuleOptions | Promise<MasterElectionAsyncModuleOptions>;
  /** The providers passed to `useFactory`. */
  inject?: FactoryProvider['inject'];
  /** A class, instantiated by the module, whose `createMasterElectionOptions()` returns the options. */
  useClass?: Type<MasterElectionOptionsFactory>;
  /** An existing provider whose `createMasterElectionOptions()` returns the options. */
  useExisting?: Type<MasterElectionOptionsFactory>;
}

/** Options of `waitForMastership()`. */
export interface WaitForMastershipOptions {
  /** Reject with a `MastershipWaitError` (reason `'timeout'`) after this many milliseconds. */
  timeoutMs?: number;
  /** Reject with a `MastershipWaitError` (reason `'aborted'`) when this signal aborts. */
  signal?: AbortSignal;
}

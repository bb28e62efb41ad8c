import type { FactoryProvider, ModuleMetadata, Type } from '@nestjs/common';
import type { DoozerClient } from '../doozer/index.js';

/** What `MasterElectionModule` does when Doozer cannot be reached at boot. */
export type OnUnreachable = 'fail' | 'retry';

/** Options of one election registered with `MasterElectionModule.forRoot()` / `forRootAsync()`. */
export interface MasterElectionModuleOptions {
  /**
   * The Doozer URI to connect to, e.g. `doozer:?ca=10.0.0.1:8046&sk=secret`.
   * Registrations of one application that give the same `uri` (and
   * `bootUri`) share one connection. Give either `uri` or `client`.
   */
  uri?: string;
  /**
   * An already connected Doozer client to use instead of `uri`. It is never
   * closed by the module: its owner closes it after the application.
   */
  client?: DoozerClient;
  /**
   * Boot URI used to resolve a `cn=` cluster name of `uri`. Required when
   * `uri` has `cn=` and no `ca=` addresses (with `ca=` addresses, `cn=` is
   * not looked up, as in the Go client); the boot fails otherwise with an
   * `ElectionConfigError` naming `bootUri`.
   */
  bootUri?: string;
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
  address?: string;
  /** False for a passive follower that never becomes master. Default true. */
  participating?: boolean;
  /** See the election engine's `MasterElectionOptions.leaseMs`. Default 10000. */
  leaseMs?: number;
  /**
   * See `MasterElectionOptions.renewDeadlineMs`. Default: 70% of `leaseMs`
   * (rounded down), at most 7000; 7000 with the default lease.
   */
  renewDeadlineMs?: number;
  /**
   * See `MasterElectionOptions.retryPeriodMs`. Default: `renewDeadlineMs`
   * / 3.5 (rounded down), at most 2000; 2000 with the default lease.
   */
  retryPeriodMs?: number;
  /** See `MasterElectionOptions.electionJitterMs`. Default: adaptive. */
  electionJitterMs?: number;
  /** See `MasterElectionOptions.respectLeaselessMaster`. Default false. */
  respectLeaselessMaster?: boolean;
  /** Force a new election once this process has joined (deposes the current master). Default false. */
  forceElectionOnStart?: boolean;
  /** Limit of one connection attempt to Doozer. Default: the client's (5000 ms). */
  connectTimeoutMs?: number;
  /**
   * When Doozer cannot be reached at boot: `'fail'` (default) fails the boot
   * with a {@link MasterElectionConnectError} naming the URI (without its
   * secret); `'retry'` lets the application boot and keeps connecting in
   * the background, starting the election once connected.
   */
  onUnreachable?: OnUnreachable;
}

/** Registration-level options of `forRoot()` / `forRootAsync()`, beside the election options. */
export interface MasterElectionModuleExtras {
  /** Register the module globally (its services are injectable everywhere). Default false. */
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

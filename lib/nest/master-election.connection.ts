import { setTimeout as sleep } from 'node:timers/promises';
import {
  DoozerPermissionError,
  DoozerTimeoutError,
  DoozerUriError,
  type DoozerClient,
} from '../doozer/index.js';
import { ElectionConfigError, ElectionFatalError, type ElectionStore } from '../election/index.js';
import { DoozerElectionStore } from '../backends/doozer/index.js';
import {
  isDriverMissingError,
  openUriStore,
  redactSecrets,
  type ClosableElectionStore,
} from '../backends/store-uri.js';
import { redactDoozerUri } from './doozer-connection.pool.js';
import { RETRY_INITIAL_DELAY_MS, RETRY_MAX_DELAY_MS } from './master-election.constants.js';
import { MasterElectionConnectError } from './master-election.errors.js';
import type { ElectionLog } from './master-election.logger.js';
import {
  ACCESS_REFUSED,
  BAD_URI,
  CLOSE_FAILED,
  CONNECTED,
  NO_ANSWER,
  RETRYING,
  START_RETRYING,
} from './master-election.messages.js';
import type { ResolvedModuleOptions } from './master-election.options.js';
import type { MasterElectionRegistry } from './master-election.registry.js';

export const describeError = (err: unknown): string =>
  err instanceof Error ? err.message : String(err);

/** Delays with exponential growth and jitter (what is logged is what is waited). */
export class RetryDelay {
  private delay = RETRY_INITIAL_DELAY_MS;

  next(): number {
    const ms = Math.round(this.delay * (0.5 + Math.random() / 2));
    this.delay = Math.min(this.delay * 2, RETRY_MAX_DELAY_MS);
    return ms;
  }

  reset(): void {
    this.delay = RETRY_INITIAL_DELAY_MS;
  }
}

/** Waits `ms`, or less when `signal` aborts (never rejects). */
export const pause = (ms: number, signal: AbortSignal): Promise<unknown> =>
  sleep(ms, undefined, { signal }).catch(() => undefined);

/**
 * The storage of one registration: the user's `store` (or what its factory
 * returns), the etcd or PostgreSQL store of an `etcd://` or `postgres://`
 * `uri` (shared through the application's store pool), or a Doozer store on
 * the user's `client` or on a connection shared through the application's
 * pool; and how boot failures are named.
 * It never closes a store or a client it was given.
 */
export class ElectionConnection {
  /** The connection taken from the pool (undefined with a user's `client` or `store`). */
  private pooled: DoozerClient | undefined;
  /** The etcd or PostgreSQL store taken from the store pool (with such a `uri`). */
  private pooledStore: ClosableElectionStore | undefined;
  /** The store in use, once connected. */
  private current: ElectionStore | undefined;

  constructor(
    private readonly opts: ResolvedModuleOptions,
    private readonly registry: MasterElectionRegistry,
    private readonly log: ElectionLog,
    private readonly signal: AbortSignal,
  ) {}

  /** The URI for messages, its secret redacted. */
  get uri(): string {
    if (this.opts.storeUri !== undefined) return this.opts.storeUri.shown;
    if (this.opts.uri !== undefined) return redactDoozerUri(this.opts.uri);
    if (this.opts.client !== undefined) return '(the given client)';
    return this.current ? String(this.current) : '(the given store)';
  }

  /** The backend named in messages: `Doozer`, `etcd` or `PostgreSQL`. */
  get backend(): string {
    const kind = this.opts.storeUri?.kind;
    return kind === 'etcd' ? 'etcd' : kind === 'postgres' ? 'PostgreSQL' : 'Doozer';
  }

  /** `text` without the secrets of an etcd or PostgreSQL `uri`. */
  private redact(text: string): string {
    return this.opts.storeUri ? redactSecrets(this.opts.storeUri, text) : text;
  }

  /** The Doozer client in use, if any (none with `store`). */
  get client(): DoozerClient | undefined {
    return this.opts.client ?? this.pooled;
  }

  /** The store in use, once connected. */
  get store(): ElectionStore | undefined {
    return this.current;
  }

  /** Opens the store: one attempt, abandoned when shutdown begins. */
  async connect(): Promise<ElectionStore> {
    if (this.current) return this.current;
    const given = this.opts.store;
    if (given !== undefined) {
      try {
        this.current = typeof given === 'function' ? await given() : given;
      } catch (err) {
        if (err instanceof ElectionConfigError) throw err;
        throw new MasterElectionConnectError(this.opts.name, this.uri, describeError(err), {
          cause: err,
        });
      }
      if (typeof this.current?.openLock !== 'function') {
        this.current = undefined;
        throw new ElectionConfigError(
          'store',
          'the store function did not return an ElectionStore',
        );
      }
      return this.current;
    }
    if (this.opts.storeUri !== undefined) {
      this.current = await this.openUriStore();
      return this.current;
    }
    this.current = new DoozerElectionStore(await this.connectDoozer());
    return this.current;
  }

  /** The etcd or PostgreSQL store of `uri` (shared through the store pool). */
  private async openUriStore(): Promise<ClosableElectionStore> {
    const parsed = this.opts.storeUri!;
    const text = this.opts.uri!;
    const timeout = this.opts.connectTimeoutMs;
    try {
      this.pooledStore = await this.registry.stores.acquire(
        text,
        () => openUriStore(parsed.kind, text, { connectTimeoutMs: timeout }),
        this.signal,
      );
      return this.pooledStore;
    } catch (err) {
      // A missing driver and bad options fail as they are: typed, naming the package or option.
      if (err instanceof ElectionConfigError || isDriverMissingError(err)) throw err;
      throw new MasterElectionConnectError(
        this.opts.name,
        this.uri,
        this.redact(describeError(err)),
        { cause: err, backend: this.backend },
      );
    }
  }

  /** The Doozer client of `client` or `uri` (shared through the pool). */
  private async connectDoozer(): Promise<DoozerClient> {
    if (this.opts.client) return this.opts.client;
    const uri = this.opts.uri ?? '';
    try {
      this.pooled = await this.registry.connections.acquire(uri, {
        bootUri: this.opts.bootUri,
        connectTimeoutMs: this.opts.connectTimeoutMs,
        signal: this.signal,
        logger: {
          debug: (m) => this.log.debug(m),
          warn: (m) => this.log.warn(m),
          error: (m) => this.log.error(m),
        },
      });
      return this.pooled;
    } catch (err) {
      throw new MasterElectionConnectError(this.opts.name, this.uri, describeError(err), {
        cause: err,
      });
    }
  }

  /**
   * The error of a start that failed after connecting (the first read of
   * the election), naming the election and the URI: a server that accepted
   * the connection but never answers is told apart.
   */
  startError(err: unknown): unknown {
    if (err instanceof ElectionConfigError || err instanceof MasterElectionConnectError) return err;
    if (isDriverMissingError(err)) return err;
    const reason = err instanceof DoozerTimeoutError ? NO_ANSWER(err.message) : describeError(err);
    return new MasterElectionConnectError(this.opts.name, this.uri, this.redact(reason), {
      cause: err,
      backend: this.backend,
    });
  }

  async release(): Promise<void> {
    this.current = undefined;
    const store = this.pooledStore;
    this.pooledStore = undefined;
    if (store) {
      try {
        await this.registry.stores.release(store);
      } catch (err) {
        this.log.warn(CLOSE_FAILED(this.opts.name, describeError(err)));
      }
    }
    const client = this.pooled;
    this.pooled = undefined;
    if (!client) return;
    try {
      await this.registry.connections.release(client);
    } catch (err) {
      this.log.warn(CLOSE_FAILED(this.opts.name, describeError(err)));
    }
  }

  /**
   * `onUnreachable: 'retry'`: connects, then runs `start`, retrying each with
   * backoff until it succeeds or `signal` aborts. Gives up (calls `giveUp`)
   * when retrying cannot help: a wrong secret, an unusable URI, bad options.
   */
  async startRetrying(
    start: (store: ElectionStore) => Promise<void>,
    giveUp: (fatal: ElectionFatalError) => Promise<void>,
  ): Promise<void> {
    const { signal } = this;
    const name = this.opts.name;
    const delay = new RetryDelay();
    let store: ElectionStore | undefined;
    while (!signal.aborted && !store) {
      try {
        store = await this.connect();
        if (this.opts.uri !== undefined) this.log.log(CONNECTED(name, this.uri, this.backend));
      } catch (err) {
        if (signal.aborted) return; // shutdown abandoned the attempt
        const cause = err instanceof Error && err.cause ? err.cause : err;
        // Retrying cannot help: the secret is wrong, or the URI cannot be used
        // (e.g. its cn= cluster has no members at the boot URI).
        const fatal =
          cause instanceof DoozerPermissionError
            ? ACCESS_REFUSED(name, this.uri, cause.message)
            : cause instanceof DoozerUriError
              ? BAD_URI(name, this.uri, cause.message)
              : cause instanceof ElectionConfigError || isDriverMissingError(cause)
                ? `election ${name} stopped: ${(cause as Error).message}`
                : undefined;
        if (fatal !== undefined) {
          await giveUp(new ElectionFatalError(fatal, { cause }));
          return;
        }
        const ms = delay.next();
        this.log.warn(
          RETRYING(name, this.uri, this.redact(describeError(cause)), ms, this.backend),
        );
        await pause(ms, signal);
      }
    }
    delay.reset();
    while (store && !signal.aborted) {
      try {
        await start(store);
        return;
      } catch (err) {
        if (err instanceof ElectionConfigError || err instanceof DoozerPermissionError) {
          await giveUp(
            new ElectionFatalError(`election ${name} stopped: ${err.message}`, { cause: err }),
          );
          return;
        }
        const ms = delay.next();
        this.log.warn(START_RETRYING(name, this.redact(describeError(err)), ms));
        await pause(ms, signal);
      }
    }
  }
}

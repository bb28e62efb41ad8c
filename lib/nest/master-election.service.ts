import { setTimeout as sleep } from 'node:timers/promises';
import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { BehaviorSubject, Subscription, type Observable } from 'rxjs';
import { jittered } from '../shared/backoff.js';
import { errorMessage } from '../shared/errors.js';
import { DoozerPermissionError, DoozerUriError, type DoozerClient } from '../doozer/index.js';
import {
  ElectionConfigError,
  ElectionFatalError,
  MasterElectionClient,
  type ElectionHealth,
  type ElectionState,
  type MasterElectionEventReceiver,
  type MasterTerm,
} from '../election/index.js';
import { redactDoozerUri } from './doozer-connection.pool.js';
import {
  DEFAULT_ELECTION,
  LOGGER_CONTEXT,
  MASTER_ELECTION_REGISTRATION,
  RETRY_INITIAL_DELAY_MS,
  RETRY_MAX_DELAY_MS,
  type ElectionKey,
} from './master-election.constants.js';
import {
  MasterElectionConnectError,
  MasterElectionNotRunningError,
  MastershipWaitError,
} from './master-election.errors.js';
import type {
  MasterElectionModuleOptions,
  WaitForMastershipOptions,
} from './master-election.interfaces.js';
import {
  ACCESS_REFUSED,
  BAD_URI,
  BECOME_MASTER_FAILED,
  CLOSE_FAILED,
  CONNECTED,
  DECORATOR_OF,
  HANDLER_FAILED,
  NOT_RUNNING,
  RESIGN_FAILED,
  RESIGN_SLOW,
  RETRYING,
  START_RETRYING,
  UNKNOWN_OPTION,
} from './master-election.messages.js';
import type { ElectionEvent } from './master-election-metadata.accessor.js';
import {
  MASTER_ELECTION_MODULE_OPTIONS,
  type MasterElectionRegistration,
} from './master-election.module-definition.js';
import { resolveModuleOptions, type ResolvedModuleOptions } from './master-election.options.js';
import { MasterElectionOrchestrator, type HandlerFailure } from './master-election.orchestrator.js';
import { MasterElectionRegistry } from './master-election.registry.js';
import { addRunning, removeRunning } from './master-only.registry.js';

const STOPPED: ElectionState = Object.freeze({ role: 'stopped', master: '', term: 0 });

const describe = errorMessage;

const sameState = (a: ElectionState, b: ElectionState): boolean =>
  a.role === b.role && a.master === b.master && a.term === b.term;

/**
 * One election of the application, as registered with
 * `MasterElectionModule.forRoot()` / `forRootAsync()`. Inject the default
 * registration's as `MasterElectionService` (or `@InjectMasterElection()`),
 * a named one with `@InjectMasterElection(name)`.
 *
 * The election starts when the application bootstraps (after every
 * decorated handler is registered) and stops when it shuts down; a master
 * resigns in `beforeApplicationShutdown` so another process takes over at
 * once.
 *
 * The process counts as master (`isMaster()`, role `'master'` in `state$`)
 * only once every `@OnBecomeMaster` handler of the term has completed, and
 * stops counting the moment the term ends.
 */
@Injectable()
export class MasterElectionService
  implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  /** The election's name (`/ns/service/master/<name>`). */
  readonly name: string;
  /** The `host:port` this process advertises while master. */
  readonly address: string;
  /** Whether this process takes part in elections (false: it only follows). */
  readonly participating: boolean;
  /** Whether this is the application's default registration. */
  readonly isDefault: boolean;
  /**
   * The election as this process sees it: `{ role, master, term }`. Replays
   * the current state to each new subscriber, then emits every change;
   * completes when the application shuts down. `role` is `'stopped'` until
   * the election has started (and after it stopped), and `'candidate'` while
   * this process's `@OnBecomeMaster` handlers run (`master` and `term`
   * already name the new term), and for the moment after it stepped down
   * (`resign()`, `forceMasterElection()`) while the election file still
   * names it: a participant never reports itself as a slave of its own
   * address.
   */
  readonly state$: Observable<ElectionState>;

  private readonly logger = new Logger(LOGGER_CONTEXT);
  private readonly opts: ResolvedModuleOptions;
  private readonly subject = new BehaviorSubject<ElectionState>(STOPPED);
  private readonly stopStarting = new AbortController();
  private readonly onHalt = new Set<(err: MastershipWaitError) => void>();
  private election: MasterElectionClient | undefined;
  /** The connection taken from the pool (undefined with a user's `client`). */
  private pooled: DoozerClient | undefined;
  private starting: Promise<void> | undefined;
  private engineSubscription: Subscription | undefined;
  /** The term whose `@OnBecomeMaster` handlers have all completed. */
  private readyTerm: MasterTerm | undefined;
  private closing = false;
  private halted = false;
  private completed = false;

  /** The receiver the engine notifies; every notification is awaited before the next. */
  private readonly receiver: MasterElectionEventReceiver = {
    becomeMaster: (term) => this.handleBecomeMaster(term),
    becomeSlave: (master) => this.handleBecomeSlave(master),
    electionError: (err) => this.handleError(err),
    electionFatal: (err) => this.handleFatal(err),
  };

  constructor(
    @Inject(MASTER_ELECTION_MODULE_OPTIONS) options: MasterElectionModuleOptions,
    @Inject(MASTER_ELECTION_REGISTRATION) registration: MasterElectionRegistration,
    private readonly registry: MasterElectionRegistry,
    private readonly orchestrator: MasterElectionOrchestrator,
  ) {
    this.opts = resolveModuleOptions(options, registration.staticName);
    this.name = this.opts.name;
    this.address = this.opts.address;
    this.participating = this.opts.participating;
    this.isDefault = registration.isDefault;
    this.state$ = this.subject.asObservable();
    for (const key of this.opts.unknownKeys) this.logger.warn(UNKNOWN_OPTION(this.name, key));
    registry.register({ name: this.name, isDefault: this.isDefault });
  }

  // ------------------------------------------------------------------ queries

  /**
   * True while this process is master: the engine holds a valid term and
   * every `@OnBecomeMaster` handler of that term has completed. Checks the
   * clock, so it turns false the moment the term ends.
   */
  isMaster(): boolean {
    const term = this.election?.currentTerm;
    return (
      term !== undefined &&
      term === this.readyTerm &&
      this.election?.isMaster() === true &&
      !this.closing
    );
  }

  /** This process's master term while {@link isMaster} is true. */
  get currentTerm(): MasterTerm | undefined {
    return this.isMaster() ? this.readyTerm : undefined;
  }

  /**
   * The fencing token of this process's current master term (also while its
   * `@OnBecomeMaster` handlers run), 0 when it holds none. Pass it along with
   * leader-only writes so that other systems can refuse a deposed master.
   */
  get fencingToken(): number {
    return this.election?.currentTerm?.fencingToken ?? 0;
  }

  /** The current state (what `state$` last emitted). */
  get state(): ElectionState {
    return this.subject.getValue();
  }

  /** The current master's `host:port` as last seen (`''` when none is known): cheap, possibly stale. */
  getCurrentMaster(): string {
    return this.closing ? '' : (this.election?.getCurrentMaster() ?? '');
  }

  /**
   * Reads the current master from Doozer (`''` when none).
   * @throws MasterElectionNotRunningError before the election started or after it stopped.
   */
  async readCurrentMaster(): Promise<string> {
    return this.running('readCurrentMaster').readCurrentMaster();
  }

  /**
   * Health, for probes: healthy while the election runs and its Doozer
   * connection is live. `role` is the service's (see {@link state$}).
   */
  health(): ElectionHealth {
    const state = this.state;
    const election = this.election;
    if (!election || this.closing) {
      const connection = this.opts.client ?? this.pooled;
      return {
        healthy: false,
        ...state,
        connected: connection?.state === 'connected',
        reason: this.closing ? 'election stopped' : 'election not started',
      };
    }
    return { ...election.health(), ...state };
  }

  // ------------------------------------------------------------------ actions

  /**
   * Forces a new election now: a master steps down and takes part again;
   * any other process deletes the election file.
   * @throws MasterElectionNotRunningError before the election started or after it stopped.
   */
  async forceMasterElection(): Promise<void> {
    await this.running('forceMasterElection').forceMasterElection();
  }

  /**
   * Gives up mastership now, so another participant takes over at once;
   * this process sits the next election out. No-op when not master.
   * @throws MasterElectionNotRunningError before the election started or after it stopped.
   */
  async resign(): Promise<void> {
    await this.running('resign').resign();
  }

  /**
   * Resolves with this process's master term once it is master (at once if
   * it already is).
   * @throws MastershipWaitError with reason `'timeout'` after `timeoutMs`,
   *   `'aborted'` when `signal` aborts, `'stopped'` when the election stops,
   *   `'not-participating'` for a passive registration.
   */
  waitForMastership(options: WaitForMastershipOptions = {}): Promise<MasterTerm> {
    const { timeoutMs, signal } = options;
    const now = this.currentTerm;
    if (now) return Promise.resolve(now);
    if (!this.participating) {
      return Promise.reject(
        new MastershipWaitError(
          'not-participating',
          `election "${this.name}": this process does not participate and never becomes master`,
        ),
      );
    }
    if (this.closing || this.halted) return Promise.reject(this.stoppedError());
    if (signal?.aborted) return Promise.reject(this.abortedError(signal));
    return new Promise<MasterTerm>((resolve, reject) => {
      const subscription = new Subscription();
      let timer: NodeJS.Timeout | undefined;
      const settle = (fn: () => void): void => {
        subscription.unsubscribe();
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.onHalt.delete(onHalt);
        fn();
      };
      const onAbort = (): void => settle(() => reject(this.abortedError(signal)));
      const onHalt = (err: MastershipWaitError): void => settle(() => reject(err));
      this.onHalt.add(onHalt);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            settle(() =>
              reject(
                new MastershipWaitError(
                  'timeout',
                  `election "${this.name}": not master within ${timeoutMs} ms`,
                ),
              ),
            ),
          timeoutMs,
        );
      }
      subscription.add(
        this.subject.subscribe(() => {
          const term = this.currentTerm;
          if (term) settle(() => resolve(term));
        }),
      );
    });
  }

  // ---------------------------------------------------------------- lifecycle

  /** Starts the election (after every module has initialised, so every handler is registered). */
  async onApplicationBootstrap(): Promise<void> {
    this.registry.checkDeclarations();
    const keys: ElectionKey[] = this.isDefault ? [this.name, DEFAULT_ELECTION] : [this.name];
    addRunning(keys, this);
    if (this.opts.onUnreachable === 'retry') {
      this.starting = this.startRetrying(this.stopStarting.signal);
      return;
    }
    try {
      const client = await this.connect();
      try {
        await this.startElection(client);
      } catch (err) {
        await this.releaseConnection();
        throw err;
      }
    } catch (err) {
      removeRunning(this);
      throw err;
    }
  }

  /** A master resigns, so another process takes over without waiting for the lease to run out. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopStarting.abort();
    const election = this.election;
    if (!election) return;
    // The term ends at once; releasing the lease and the election file may hang while
    // Doozer is unreachable, so shutdown waits for that at most renewDeadlineMs.
    const limit = new AbortController();
    try {
      const finished = await Promise.race([
        election.resign().then(() => true),
        sleep(this.opts.renewDeadlineMs, false, { signal: limit.signal }),
      ]);
      if (!finished) this.logger.warn(RESIGN_SLOW(this.name, this.opts.renewDeadlineMs));
    } catch (err) {
      this.logger.warn(RESIGN_FAILED(this.name, describe(err)));
    } finally {
      limit.abort();
    }
  }

  /** Stops the election and releases the Doozer connection (closed by its last user). */
  async onApplicationShutdown(): Promise<void> {
    this.closing = true;
    this.stopStarting.abort();
    await this.starting;
    const election = this.election;
    if (election) {
      try {
        await election.close();
      } catch (err) {
        this.logger.warn(CLOSE_FAILED(this.name, describe(err)));
      }
    }
    this.engineSubscription?.unsubscribe();
    await this.releaseConnection();
    removeRunning(this);
    this.readyTerm = undefined;
    this.refresh();
    this.completed = true;
    this.subject.complete();
    this.halt();
  }

  // ------------------------------------------------------------------ startup

  /** Opens (or shares) the connection: one attempt, abandoned when shutdown begins. */
  private async connect(): Promise<DoozerClient> {
    if (this.opts.client) return this.opts.client;
    const uri = this.opts.uri ?? '';
    try {
      this.pooled = await this.registry.connections.acquire(uri, {
        bootUri: this.opts.bootUri,
        connectTimeoutMs: this.opts.connectTimeoutMs,
        signal: this.stopStarting.signal,
        logger: {
          debug: (m) => this.logger.debug(m),
          warn: (m) => this.logger.warn(m),
          error: (m) => this.logger.error(m),
        },
      });
      return this.pooled;
    } catch (err) {
      throw new MasterElectionConnectError(this.name, redactDoozerUri(uri), describe(err), {
        cause: err,
      });
    }
  }

  private async releaseConnection(): Promise<void> {
    const client = this.pooled;
    this.pooled = undefined;
    if (!client) return;
    try {
      await this.registry.connections.release(client);
    } catch (err) {
      this.logger.warn(CLOSE_FAILED(this.name, describe(err)));
    }
  }

  private async startElection(client: DoozerClient): Promise<void> {
    const election = await MasterElectionClient.create(
      client,
      this.name,
      this.address,
      this.participating,
      this.receiver,
      { ...this.opts.election, logger: this.logger },
    );
    if (this.closing || this.stopStarting.signal.aborted) {
      await election.close();
      return;
    }
    this.election = election;
    this.engineSubscription = election.state$.subscribe({
      next: () => this.refresh(),
      complete: () => this.handleEngineStopped(),
    });
    if (this.opts.forceElectionOnStart) {
      try {
        await election.forceMasterElection();
      } catch (err) {
        this.logger.warn(`election "${this.name}": forceElectionOnStart failed: ${describe(err)}`);
      }
    }
  }

  /** `onUnreachable: 'retry'`: connects, then starts, retrying each with backoff until shutdown. */
  private async startRetrying(signal: AbortSignal): Promise<void> {
    const uri = redactDoozerUri(this.opts.uri ?? '');
    let delay = RETRY_INITIAL_DELAY_MS;
    /** The next pause: the backoff delay with jitter (what is logged is what is waited). */
    const nextPause = (): number => {
      const ms = Math.round(jittered(delay, 0.5, 1));
      delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS);
      return ms;
    };
    const pause = (ms: number): Promise<unknown> =>
      sleep(ms, undefined, { signal }).catch(() => undefined);
    let client: DoozerClient | undefined;
    while (!signal.aborted && !client) {
      try {
        client = await this.connect();
        if (!this.opts.client) this.logger.log(CONNECTED(this.name, uri));
      } catch (err) {
        if (signal.aborted) return; // shutdown abandoned the attempt
        const cause = err instanceof Error && err.cause ? err.cause : err;
        // Retrying cannot help: the secret is wrong, or the URI cannot be used
        // (e.g. its cn= cluster has no members at the boot URI).
        const fatal =
          cause instanceof DoozerPermissionError
            ? ACCESS_REFUSED(this.name, uri, cause.message)
            : cause instanceof DoozerUriError
              ? BAD_URI(this.name, uri, cause.message)
              : undefined;
        if (fatal !== undefined) {
          await this.giveUp(new ElectionFatalError(fatal, { cause }));
          return;
        }
        const ms = nextPause();
        this.logger.warn(RETRYING(this.name, uri, describe(cause), ms));
        await pause(ms);
      }
    }
    delay = RETRY_INITIAL_DELAY_MS;
    while (client && !signal.aborted) {
      try {
        await this.startElection(client);
        return;
      } catch (err) {
        if (err instanceof ElectionConfigError || err instanceof DoozerPermissionError) {
          await this.giveUp(
            new ElectionFatalError(`election ${this.name} stopped: ${err.message}`, { cause: err }),
          );
          return;
        }
        const ms = nextPause();
        this.logger.warn(START_RETRYING(this.name, describe(err), ms));
        await pause(ms);
      }
    }
  }

  // ------------------------------------------------------------ notifications

  private async handleBecomeMaster(term: MasterTerm): Promise<void> {
    term.signal.addEventListener('abort', () => queueMicrotask(() => this.refresh()), {
      once: true,
    });
    this.refresh();
    const failures = await this.orchestrator.dispatch('becomeMaster', term);
    if (failures.length > 0) {
      this.logFailures('becomeMaster', failures);
      const [first] = failures;
      if (failures.length === 1 && first) throw first.error;
      throw new AggregateError(
        failures.map((f) => f.error),
        BECOME_MASTER_FAILED(this.name, failures.length),
      );
    }
    if (term.isValid()) {
      this.readyTerm = term;
      this.refresh();
    }
  }

  private async handleBecomeSlave(master: string): Promise<void> {
    const failures = await this.orchestrator.dispatch('becomeSlave', master);
    this.logFailures('becomeSlave', failures);
    for (const f of failures) await this.handleError(f.error);
  }

  private async handleError(err: Error): Promise<void> {
    this.logFailures('electionError', await this.orchestrator.dispatch('electionError', err));
  }

  private async handleFatal(err: Error): Promise<void> {
    this.logFailures('electionFatal', await this.orchestrator.dispatch('electionFatal', err));
  }

  /** The election cannot start: report as the engine reports a fatal error, and stop. */
  private async giveUp(fatal: ElectionFatalError): Promise<void> {
    this.logger.error(fatal.message);
    await this.handleFatal(fatal);
    this.halt();
  }

  private handleEngineStopped(): void {
    this.refresh();
    if (!this.closing) this.halt();
  }

  private logFailures(event: ElectionEvent, failures: readonly HandlerFailure[]): void {
    for (const { handler, error } of failures) {
      this.logger.error(
        `${HANDLER_FAILED(DECORATOR_OF[event], handler.label, this.name)}: ${error.message}`,
        error.stack,
      );
    }
  }

  // ------------------------------------------------------------------ helpers

  /** Emits the state derived from the engine's, if it changed. */
  private refresh(): void {
    if (this.completed) return;
    const next = this.deriveState();
    if (!sameState(next, this.subject.getValue())) this.subject.next(next);
  }

  private deriveState(): ElectionState {
    const election = this.election;
    if (!election || this.closing) return STOPPED;
    const state = election.state;
    if (state.role === 'master' && !this.isMaster()) return { ...state, role: 'candidate' };
    // Right after this process stepped down (resign(), forceMasterElection(), a
    // failed @OnBecomeMaster handler), the election file still names it until
    // it is deleted: not a slave of itself.
    if (state.role === 'slave' && this.participating && state.master === this.address) {
      return { ...state, role: 'candidate' };
    }
    return state;
  }

  private running(what: string): MasterElectionClient {
    const election = this.election;
    if (!election || this.closing || this.halted) {
      throw new MasterElectionNotRunningError(NOT_RUNNING(this.name, what));
    }
    return election;
  }

  /** The election stopped for good: fail the waiters. */
  private halt(): void {
    this.halted = true;
    const err = this.stoppedError();
    for (const fail of [...this.onHalt]) fail(err);
  }

  private stoppedError(): MastershipWaitError {
    return new MastershipWaitError('stopped', `election "${this.name}" has stopped`);
  }

  private abortedError(signal: AbortSignal | undefined): MastershipWaitError {
    return new MastershipWaitError(
      'aborted',
      `election "${this.name}": waiting for mastership was aborted`,
      { cause: signal?.reason },
    );
  }
}

import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { Subscription, type Observable } from 'rxjs';
import type {
  ElectionHealth,
  ElectionState,
  ForcedElection,
  MasterTerm,
} from '../election/index.js';
import type { MasterElectionClient } from '../backends/doozer/index.js';
import { ElectionRunner } from './election.runner.js';
import { describeError } from './master-election.connection.js';
import { MASTER_ELECTION_REGISTRATION } from './master-election.constants.js';
import { MasterElectionNotRunningError, MastershipWaitError } from './master-election.errors.js';
import type {
  MasterElectionModuleOptions,
  WaitForMastershipOptions,
} from './master-election.interfaces.js';
import { ElectionLog } from './master-election.logger.js';
import {
  CLOSE_FAILED,
  NOT_RUNNING,
  RESIGN_FAILED,
  RESIGN_SLOW,
  UNKNOWN_OPTION,
} from './master-election.messages.js';
import {
  MASTER_ELECTION_MODULE_OPTIONS,
  type MasterElectionRegistration,
} from './master-election.module-definition.js';
import { resolveModuleOptions, type ResolvedModuleOptions } from './master-election.options.js';
import { MasterElectionOrchestrator } from './master-election.orchestrator.js';
import { MasterElectionRegistry } from './master-election.registry.js';
import { MasterOnlyGate } from './master-only.gate.js';

/**
 * One election of the application, as registered with
 * `MasterElectionModule.forRoot()` / `forRootAsync()`. Inject the default
 * registration's as `MasterElectionService` (or `@InjectMasterElection()`),
 * a named one with `@InjectMasterElection(name)`.
 *
 * The election starts when the application bootstraps (after every
 * decorated handler is registered) and stops when it shuts down; a master
 * resigns in `beforeApplicationShutdown` so another process takes over at
 * once (after its running `@MasterOnly` calls finished, see `drainTimeoutMs`).
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
   * no master is known, while this process's `@OnBecomeMaster` handlers run
   * (`master` and `term` already name the new term), and for the moment
   * after it stepped down (`resign()`, `forceMasterElection()`) while the
   * election file still names it: a participant never reports itself as a
   * slave of its own address.
   */
  readonly state$: Observable<ElectionState>;

  private readonly log: ElectionLog;
  private readonly opts: ResolvedModuleOptions;
  private readonly runner: ElectionRunner;
  private readonly onHalt = new Set<(err: MastershipWaitError) => void>();
  private starting: Promise<void> | undefined;

  constructor(
    @Inject(MASTER_ELECTION_MODULE_OPTIONS) options: MasterElectionModuleOptions,
    @Inject(MASTER_ELECTION_REGISTRATION) registration: MasterElectionRegistration,
    private readonly registry: MasterElectionRegistry,
    orchestrator: MasterElectionOrchestrator,
    private readonly gate: MasterOnlyGate,
  ) {
    this.opts = resolveModuleOptions(options, registration.staticName);
    this.log = new ElectionLog(this.opts.logger, this.opts.logLevel);
    this.name = this.opts.name;
    this.address = this.opts.address;
    this.participating = this.opts.participating;
    this.isDefault = registration.isDefault;
    this.runner = new ElectionRunner(this.opts, registry, orchestrator, gate, this.log, () =>
      this.failWaiters(),
    );
    gate.attach(this, this.log, this.opts.drainTimeoutMs);
    this.state$ = this.runner.subject.asObservable();
    for (const key of this.opts.unknownKeys) this.log.warn(UNKNOWN_OPTION(this.name, key));
    registry.register({
      name: this.name,
      isDefault: this.isDefault,
      service: this,
      orchestrator,
      gate,
    });
  }

  // ------------------------------------------------------------------ queries

  /**
   * True while this process is master: the engine holds a valid term and
   * every `@OnBecomeMaster` handler of that term has completed. Checks the
   * clock, so it turns false the moment the term ends.
   */
  isMaster(): boolean {
    return this.runner.isMaster();
  }

  /** This process's master term while {@link isMaster} is true. */
  get currentTerm(): MasterTerm | undefined {
    return this.isMaster() ? this.runner.readyTerm : undefined;
  }

  /**
   * The fencing token of this process's current master term (also while its
   * `@OnBecomeMaster` handlers run), 0 when it holds none. Pass it along with
   * leader-only writes so that other systems can refuse a deposed master.
   */
  get fencingToken(): number {
    return this.runner.election?.currentTerm?.fencingToken ?? 0;
  }

  /** The current state (what `state$` last emitted). */
  get state(): ElectionState {
    return this.runner.subject.getValue();
  }

  /** The current master's `host:port` as last seen (`''` when none is known): cheap, possibly stale. */
  getCurrentMaster(): string {
    return this.runner.closing ? '' : (this.runner.election?.getCurrentMaster() ?? '');
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
   * connection is live, and no `@OnBecomeMaster` handler is running past
   * `becomeMasterTimeoutMs`. `role` is the service's (see {@link state$}).
   */
  health(): ElectionHealth {
    return this.runner.health();
  }

  // ------------------------------------------------------------------ actions

  /**
   * Forces a new election now: a master steps down and takes part again;
   * any other process deletes the election file.
   * @returns what was done (see `ForcedElection`: `deposed`, `superseded` when a
   *   new election happened meanwhile, `not-forced` when the master kept renewing…).
   * @throws MasterElectionNotRunningError before the election started or after it stopped.
   */
  async forceMasterElection(): Promise<ForcedElection> {
    return await this.running('forceMasterElection').forceMasterElection();
  }

  /**
   * Gives up mastership now, so another participant takes over at once;
   * this process sits the next election out. No-op when not master.
   * Running `@MasterOnly` calls finish first (see `drainTimeoutMs`).
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
    if (this.runner.closing || this.runner.halted) return Promise.reject(this.stoppedError());
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
        this.state$.subscribe(() => {
          const term = this.currentTerm;
          if (term) settle(() => resolve(term));
        }),
      );
    });
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Starts the election (after every module has initialised, so every handler is registered).
   * @internal Nest lifecycle hook.
   */
  async onApplicationBootstrap(): Promise<void> {
    this.registry.checkDeclarations();
    const { runner } = this;
    const start = async (client: Parameters<ElectionRunner['start']>[0]): Promise<void> => {
      await runner.start(client);
      if (this.opts.forceElectionOnStart && runner.election) {
        try {
          await runner.election.forceMasterElection();
        } catch (err) {
          this.log.warn(
            `election "${this.name}": forceElectionOnStart failed: ${describeError(err)}`,
          );
        }
      }
    };
    if (this.opts.onUnreachable === 'retry') {
      this.starting = runner.connection.startRetrying(start, (fatal) => runner.giveUp(fatal));
      return;
    }
    const client = await runner.connection.connect();
    try {
      await start(client);
    } catch (err) {
      await runner.connection.release();
      throw runner.connection.startError(err);
    }
  }

  /**
   * A master resigns, so another process takes over without waiting for the lease to run out.
   * @internal Nest lifecycle hook.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.runner.stopStarting.abort();
    const election = this.runner.election;
    if (!election) return;
    // The term ends at once; draining @MasterOnly calls, then releasing the lease and
    // the election file may take a while (Doozer unreachable), so shutdown waits for
    // that at most renewDeadlineMs plus the drain.
    const limitMs = this.opts.renewDeadlineMs + this.opts.drainTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    try {
      const finished = await Promise.race([
        election.resign().then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), limitMs))),
      ]);
      // The release waits for running @MasterOnly calls (bounded by drainTimeoutMs);
      // the election stops only after that.
      if (finished) await this.gate.whenDrained();
      else this.log.warn(RESIGN_SLOW(this.name, limitMs));
    } catch (err) {
      this.log.warn(RESIGN_FAILED(this.name, describeError(err)));
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Stops the election and releases the Doozer connection (closed by its last user).
   * @internal Nest lifecycle hook.
   */
  async onApplicationShutdown(): Promise<void> {
    this.runner.closing = true;
    this.runner.stopStarting.abort();
    await this.starting;
    try {
      await this.runner.close();
    } catch (err) {
      this.log.warn(CLOSE_FAILED(this.name, describeError(err)));
    }
    await this.runner.connection.release();
    this.failWaiters();
  }

  // ------------------------------------------------------------------ helpers

  private running(what: string): MasterElectionClient {
    const { election, closing, halted } = this.runner;
    if (!election || closing || halted) {
      throw new MasterElectionNotRunningError(NOT_RUNNING(this.name, what));
    }
    return election;
  }

  /** The election stopped for good: fail the waiters. */
  private failWaiters(): void {
    this.runner.halted = true;
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

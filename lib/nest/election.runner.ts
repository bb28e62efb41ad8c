import { BehaviorSubject, type Subscription } from 'rxjs';
import {
  ElectionConfigError,
  ElectionFatalError,
  type ElectionHealth,
  type ElectionState,
  type ElectionStore,
  type MasterElectionEventReceiver,
  type MasterTerm,
} from '../election/index.js';
import { MasterElectionClient } from '../backends/doozer/index.js';
import { MAX_DURATION_MS } from '../shared/duration.js';
import { BecomeMasterRunner } from './become-master.runner.js';
import { FailureBackoff } from './failure-backoff.js';
import {
  ElectionConnection,
  RetryDelay,
  describeError,
  pause,
} from './master-election.connection.js';
import type { ElectionLog } from './master-election.logger.js';
import {
  BECOME_MASTER_FAILED,
  DECORATOR_OF,
  HANDLER_FAILED,
  HANDLER_FAILED_AGAIN,
  HANDLER_OVERDUE,
  REJOINING,
  SITTING_OUT,
  SWAP_FAILED,
} from './master-election.messages.js';
import type { ElectionEvent } from './master-election-metadata.accessor.js';
import type { ResolvedModuleOptions } from './master-election.options.js';
import type { HandlerFailure, MasterElectionOrchestrator } from './master-election.orchestrator.js';
import type { MasterElectionRegistry } from './master-election.registry.js';
import type { MasterOnlyGate } from './master-only.gate.js';

const STOPPED: ElectionState = Object.freeze({ role: 'stopped', master: '', term: 0 });

const sameState = (a: ElectionState, b: ElectionState): boolean =>
  a.role === b.role && a.master === b.master && a.term === b.term;

/**
 * Runs the election engine of one registration: starts it, delivers its
 * notifications to the decorated handlers, derives the state the service
 * reports, and, after a term whose `@OnBecomeMaster` handlers failed or
 * overran `becomeMasterTimeoutMs`, sits the election out for a backoff
 * (following it passively meanwhile) so replicas whose handlers keep failing
 * do not flap the election.
 */
export class ElectionRunner {
  readonly subject = new BehaviorSubject<ElectionState>(STOPPED);
  readonly stopStarting = new AbortController();
  readonly connection: ElectionConnection;
  election: MasterElectionClient | undefined;
  /** The term whose `@OnBecomeMaster` handlers have all completed. */
  readyTerm: MasterTerm | undefined;
  closing = false;
  halted = false;
  private completed = false;
  private generation = 0;
  private subscription: Subscription | undefined;
  /** An engine swap (sitting out, or taking part again) in progress. */
  private swapping = false;
  /** Whether the store was connected when the swap began (health with a `store`). */
  private swapConnected = false;
  private swaps: Promise<void> = Promise.resolve();
  private sitOut: { elapsed: boolean; timer: NodeJS.Timeout | undefined } | undefined;
  private lastSlaveNotice = '';
  private readonly masterHandlers: BecomeMasterRunner;
  private readonly backoff: FailureBackoff;

  constructor(
    private readonly opts: ResolvedModuleOptions,
    registry: MasterElectionRegistry,
    private readonly orchestrator: MasterElectionOrchestrator,
    private readonly gate: MasterOnlyGate,
    private readonly log: ElectionLog,
    /** The election stopped for good (not at shutdown). */
    private readonly onHalt: () => void,
  ) {
    this.connection = new ElectionConnection(opts, registry, log, this.stopStarting.signal);
    this.masterHandlers = new BecomeMasterRunner(
      orchestrator,
      opts.name,
      opts.becomeMasterTimeoutMs,
      log,
      () => this.maybeRejoin(),
    );
    this.backoff = new FailureBackoff(opts.failureBackoffMs, opts.failureBackoffMaxMs);
  }

  get name(): string {
    return this.opts.name;
  }

  /** True while master with every `@OnBecomeMaster` handler of the term completed. */
  isMaster(): boolean {
    const term = this.election?.currentTerm;
    return (
      term !== undefined &&
      term === this.readyTerm &&
      this.election?.isMaster() === true &&
      !this.closing
    );
  }

  health(): ElectionHealth {
    const state = this.subject.getValue();
    const election = this.election;
    const client = this.connection.client;
    let health: ElectionHealth;
    if (!election || this.closing) {
      health = {
        healthy: false,
        ...state,
        connected: client?.state === 'connected',
        reason: this.closing ? 'election stopped' : 'election not started',
      };
    } else if (this.swapping) {
      // With a `store`, the store's connection as the engine last reported it.
      const connected = client ? client.state === 'connected' : this.swapConnected;
      health = { healthy: connected, ...state, connected };
      if (!connected) {
        health = {
          ...health,
          reason: client ? `Doozer connection is ${client.state}` : 'store not connected',
        };
      }
    } else {
      health = { ...election.health(), ...state };
    }
    const overdue = this.masterHandlers.overdue();
    if (overdue.length === 0 || this.closing) return health;
    const since = Math.min(...overdue.map((o) => o.since));
    const labels = overdue.map((o) => o.label);
    return {
      ...health,
      healthy: false,
      reason: HANDLER_OVERDUE(labels, this.name, Date.now() - since),
    };
  }

  // ------------------------------------------------------------------ engine

  /** Starts the engine on `store` (participating as configured, or passively while sitting out). */
  async start(store: ElectionStore, participating = this.opts.participating): Promise<void> {
    const generation = ++this.generation;
    const election = await MasterElectionClient.open(store, {
      ...this.opts.election,
      // The handlers are bounded here (BecomeMasterRunner), and the receiver's
      // becomeMaster settles at that bound: the engine's own bound only backs it up.
      becomeMasterTimeoutMs: Math.min(
        MAX_DURATION_MS,
        this.opts.becomeMasterTimeoutMs + this.opts.renewDeadlineMs,
      ),
      logger: this.log,
      beforeRelease: async (term) => {
        await this.gate.drain(term);
        await this.opts.election.beforeRelease?.(term);
      },
      name: this.name,
      address: this.opts.address,
      participating,
      receiver: this.receiver(generation),
    });
    await election.start();
    if (this.closing || this.stopStarting.signal.aborted || generation !== this.generation) {
      await election.close();
      return;
    }
    this.election = election;
    this.subscription?.unsubscribe();
    this.subscription = election.state$.subscribe({
      next: () => this.refresh(),
      complete: () => {
        if (generation !== this.generation) return;
        this.refresh();
        if (!this.closing) this.halt();
      },
    });
  }

  /** Stops the engine (bounded by the engine) and what runs around it. */
  async close(): Promise<void> {
    this.closing = true;
    this.stopStarting.abort();
    if (this.sitOut?.timer) clearTimeout(this.sitOut.timer);
    this.sitOut = undefined;
    await this.swaps;
    await this.election?.close();
    this.subscription?.unsubscribe();
    this.readyTerm = undefined;
    this.refresh();
    this.completed = true;
    this.subject.complete();
  }

  /** The election stopped for good: report it once. */
  halt(): void {
    if (this.halted) return;
    this.halted = true;
    this.onHalt();
  }

  /** The election cannot start: report as the engine reports a fatal error, and stop. */
  async giveUp(fatal: ElectionFatalError): Promise<void> {
    this.log.error(fatal.message);
    await this.handleFatal(fatal);
    this.halt();
  }

  private receiver(generation: number): MasterElectionEventReceiver {
    const current = (): boolean => generation === this.generation && !this.closing;
    return {
      becomeMaster: (term) => (current() ? this.handleBecomeMaster(term) : undefined),
      becomeSlave: (master, token) =>
        current() ? this.handleBecomeSlave(master, token) : undefined,
      electionError: (err) => this.handleError(err),
      electionFatal: (err) => (current() ? this.handleFatal(err) : undefined),
    };
  }

  // ------------------------------------------------------------ notifications

  private async handleBecomeMaster(term: MasterTerm): Promise<void> {
    term.signal.addEventListener('abort', () => queueMicrotask(() => this.refresh()), {
      once: true,
    });
    this.refresh();
    const failures = await this.masterHandlers.run(term);
    if (failures.length > 0) {
      const step = this.backoff.fail(
        failures.map((f) => `${f.handler.label}\u0000${f.error.message}`).join('\u0001'),
      );
      this.logFailures('becomeMaster', failures, step.repeated ? step.count : 0);
      this.log.warn(SITTING_OUT(this.name, step.count, step.delayMs));
      // After the engine has taken the failure (it steps down when this rejects).
      setImmediate(() => this.startSitOut(step.delayMs));
      const [first] = failures;
      if (failures.length === 1 && first) throw first.error;
      throw new AggregateError(
        failures.map((f) => f.error),
        BECOME_MASTER_FAILED(this.name, failures.length),
      );
    }
    this.backoff.succeed();
    if (term.isValid()) {
      this.readyTerm = term;
      this.refresh();
    }
  }

  private async handleBecomeSlave(master: string, fencingToken: number): Promise<void> {
    // A new engine (after sitting out) announces the master again: deliver a change only.
    const notice = `${master}\u0000${fencingToken}`;
    if (notice === this.lastSlaveNotice) return;
    this.lastSlaveNotice = notice;
    const failures = await this.orchestrator.dispatch('becomeSlave', master, fencingToken);
    this.logFailures('becomeSlave', failures, 0);
    for (const f of failures) await this.handleError(f.error);
  }

  private async handleError(err: Error): Promise<void> {
    this.logFailures('electionError', await this.orchestrator.dispatch('electionError', err), 0);
  }

  private async handleFatal(err: Error): Promise<void> {
    this.logFailures('electionFatal', await this.orchestrator.dispatch('electionFatal', err), 0);
  }

  /** Logs each failure: with its stack, or (`repeatCount` > 0) one line for a repeat. */
  private logFailures(
    event: ElectionEvent,
    failures: readonly HandlerFailure[],
    repeatCount: number,
  ): void {
    for (const { handler, error } of failures) {
      if (repeatCount > 0) {
        this.log.error(
          `${HANDLER_FAILED_AGAIN(DECORATOR_OF[event], handler.label, this.name, repeatCount)}: ${error.message}`,
        );
      } else {
        this.log.error(
          `${HANDLER_FAILED(DECORATOR_OF[event], handler.label, this.name)}: ${error.message}`,
          error.stack,
        );
      }
    }
  }

  // --------------------------------------------------------------- sitting out

  private startSitOut(delayMs: number): void {
    if (this.closing) return;
    if (this.sitOut?.timer) clearTimeout(this.sitOut.timer);
    const sitOut: { elapsed: boolean; timer: NodeJS.Timeout | undefined } = {
      elapsed: false,
      timer: undefined,
    };
    sitOut.timer = setTimeout(() => {
      sitOut.elapsed = true;
      sitOut.timer = undefined;
      this.maybeRejoin();
    }, delayMs);
    this.sitOut = sitOut;
    this.swap(false);
  }

  /** Takes part again once the backoff has passed and no overdue handler still runs. */
  private maybeRejoin(): void {
    const sitOut = this.sitOut;
    if (!sitOut?.elapsed || this.closing || this.masterHandlers.overdue().length > 0) return;
    if (this.stopStarting.signal.aborted) return;
    this.sitOut = undefined;
    this.log.log(REJOINING(this.name));
    this.swap(true);
  }

  /** Replaces the engine by one that does (or does not) take part, one swap at a time. */
  private swap(participating: boolean): void {
    this.swaps = this.swaps.then(async () => {
      if (this.closing || this.stopStarting.signal.aborted) return; // shutting down
      this.swapping = true;
      try {
        const old = this.election;
        this.swapConnected = old?.health().connected ?? false;
        this.generation++; // the old engine's notifications are ignored from here on
        this.readyTerm = undefined;
        try {
          await old?.close();
        } catch (err) {
          this.log.warn(
            `election "${this.name}": closing the engine failed: ${describeError(err)}`,
          );
        }
        await this.restart(participating);
      } finally {
        this.swapping = false;
        this.refresh();
      }
    });
  }

  private async restart(participating: boolean): Promise<void> {
    const delay = new RetryDelay();
    // (Shutdown aborts stopStarting: no new engine from then on.)
    while (!this.closing && !this.stopStarting.signal.aborted) {
      const store = this.connection.store;
      if (!store) return;
      try {
        await this.start(store, participating);
        return;
      } catch (err) {
        if (err instanceof ElectionConfigError) {
          await this.giveUp(
            new ElectionFatalError(`election ${this.name} stopped: ${err.message}`, { cause: err }),
          );
          return;
        }
        const ms = delay.next();
        this.log.warn(SWAP_FAILED(this.name, describeError(err), ms));
        await pause(ms, this.stopStarting.signal);
      }
    }
  }

  // -------------------------------------------------------------------- state

  /** Emits the state derived from the engine's, if it changed. */
  refresh(): void {
    if (this.completed || this.swapping) return;
    const next = this.deriveState();
    if (!sameState(next, this.subject.getValue())) this.subject.next(next);
  }

  private deriveState(): ElectionState {
    const election = this.election;
    if (!election || this.closing) return STOPPED;
    const state = election.state;
    if (state.role === 'stopped') return state;
    if (state.role === 'master' && !this.isMaster()) return { ...state, role: 'candidate' };
    if (state.role === 'slave' && this.opts.participating) {
      // Right after this process stepped down (resign(), forceMasterElection(), a
      // failed @OnBecomeMaster handler), the election file still names it until
      // it is deleted: not a slave of itself. Sitting out, it follows passively:
      // with no master known it is a candidate, as a participant is.
      if (state.master === this.opts.address || state.master === '') {
        return { ...state, role: 'candidate' };
      }
    }
    return state;
  }
}

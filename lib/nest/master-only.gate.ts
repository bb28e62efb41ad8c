import { Injectable } from '@nestjs/common';
import type { ElectionState, MasterTerm } from '../election/index.js';
import type { ElectionLog } from './master-election.logger.js';
import {
  DRAINED,
  DRAINING,
  DRAIN_TIMED_OUT,
  SKIPPED_FOR_TERM,
} from './master-election.messages.js';
import type { MasterOnlyTarget } from './master-only.registry.js';

/** What the gate needs of its election. */
export interface GatedElection {
  readonly name: string;
  readonly state: ElectionState;
  isMaster(): boolean;
}

interface Running {
  readonly label: string;
}

const isPromiseLike = (value: unknown): value is PromiseLike<unknown> =>
  (typeof value === 'object' || typeof value === 'function') &&
  value !== null &&
  typeof (value as { then?: unknown }).then === 'function';

/**
 * The `@MasterOnly()` methods of one registration: runs a call only while
 * this process is master, logs a skipped method once per term (not on every
 * tick), and keeps count of the calls still running so that a term ending
 * (shutdown, `resign()`, a lost lease) is released only once they finished,
 * within `drainTimeoutMs`.
 */
@Injectable()
export class MasterOnlyGate implements MasterOnlyTarget {
  private election: GatedElection | undefined;
  private log: ElectionLog | undefined;
  private drainTimeoutMs = 0;
  private readonly running = new Set<Running>();
  private readonly idleWaiters = new Set<() => void>();
  private draining: Promise<void> | undefined;
  /** Per method: the term (of whichever master) whose skip was logged last. */
  private readonly skipLogged = new Map<string, string>();

  /** Connects the gate to its election (done by the registration's service). */
  attach(election: GatedElection, log: ElectionLog, drainTimeoutMs: number): void {
    this.election = election;
    this.log = log;
    this.drainTimeoutMs = drainTimeoutMs;
  }

  /** Runs `fn` if this process is master; otherwise returns (a promise of, for `async`) `undefined`. */
  call(label: string, isAsync: boolean, fn: () => unknown): unknown {
    const election = this.election;
    if (!election?.isMaster()) {
      this.logSkip(label);
      return isAsync ? Promise.resolve(undefined) : undefined;
    }
    const result = fn();
    if (isPromiseLike(result)) {
      const entry: Running = { label };
      this.running.add(entry);
      const done = (): void => {
        this.running.delete(entry);
        if (this.running.size === 0) for (const wake of [...this.idleWaiters]) wake();
      };
      result.then(done, done);
    }
    return result;
  }

  /** The labels of the calls still running. */
  runningCalls(): readonly string[] {
    return [...this.running].map((r) => r.label);
  }

  /**
   * Resolves once no call is running, or after `drainTimeoutMs` (logged),
   * at once when none runs or the drain is off (0). The engine's
   * `beforeRelease` hook: the term is released after this.
   */
  drain(term: MasterTerm): Promise<void> {
    if (this.running.size === 0 || this.drainTimeoutMs === 0) return Promise.resolve();
    const drain = this.drainRunning(term).finally(() => {
      if (this.draining === drain) this.draining = undefined;
    });
    this.draining = drain;
    return drain;
  }

  /** Resolves once the drain in progress (if any) has finished. */
  whenDrained(): Promise<void> {
    return this.draining ?? Promise.resolve();
  }

  private async drainRunning(term: MasterTerm): Promise<void> {
    const name = this.election?.name ?? '';
    const started = Date.now();
    this.log?.log(DRAINING(name, term.fencingToken, this.runningCalls()));
    let timer: NodeJS.Timeout | undefined;
    let wake: (() => void) | undefined;
    const idle = new Promise<boolean>((resolve) => {
      wake = () => resolve(true);
      this.idleWaiters.add(wake);
    });
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), this.drainTimeoutMs);
    });
    try {
      const drained = await Promise.race([idle, timeout]);
      if (drained) this.log?.log(DRAINED(name, term.fencingToken, Date.now() - started));
      else {
        this.log?.warn(
          DRAIN_TIMED_OUT(name, term.fencingToken, this.drainTimeoutMs, this.runningCalls()),
        );
      }
    } finally {
      clearTimeout(timer);
      if (wake) this.idleWaiters.delete(wake);
    }
  }

  private logSkip(label: string): void {
    const election = this.election;
    const log = this.log;
    if (!election || !log?.enabled('debug')) return;
    const { master, term } = election.state;
    const key = `${master}\u0000${term}`;
    if (this.skipLogged.get(label) === key) return;
    this.skipLogged.set(label, key);
    log.debug(SKIPPED_FOR_TERM(label, election.name, master, term));
  }
}

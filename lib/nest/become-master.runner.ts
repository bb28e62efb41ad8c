import type { MasterTerm } from '../election/index.js';
import { MasterHandlerTimeoutError } from './master-election.errors.js';
import type { ElectionLog } from './master-election.logger.js';
import { HANDLER_LATE_DONE, HANDLER_LATE_FAILED } from './master-election.messages.js';
import type {
  HandlerCall,
  HandlerFailure,
  MasterElectionOrchestrator,
} from './master-election.orchestrator.js';

/** A handler still running past its bound. */
export interface OverdueHandler {
  /** `Class.method`. */
  readonly label: string;
  /** The term it was called for. */
  readonly fencingToken: number;
  /** When its bound passed (`Date.now()`). */
  readonly since: number;
}

/**
 * Runs the `@OnBecomeMaster` handlers of a term with a bound: a handler that
 * has not completed within `timeoutMs` counts as failed with a
 * {@link MasterHandlerTimeoutError} (the caller gives the term up, which
 * aborts `term.signal`), and is tracked as overdue until it settles.
 */
export class BecomeMasterRunner {
  private readonly overdueCalls = new Map<HandlerCall, OverdueHandler>();

  constructor(
    private readonly orchestrator: MasterElectionOrchestrator,
    private readonly election: string,
    private readonly timeoutMs: number,
    private readonly log: ElectionLog,
    /** Called when the last overdue handler has settled. */
    private readonly onCaughtUp: () => void,
  ) {}

  /** The handlers still running past their bound. */
  overdue(): readonly OverdueHandler[] {
    return [...this.overdueCalls.values()];
  }

  /** Runs the handlers; resolves with the failures (timeouts included) once each has settled or timed out. */
  async run(term: MasterTerm): Promise<HandlerFailure[]> {
    const calls = this.orchestrator.start('becomeMaster', term);
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.timeoutMs);
    });
    const errors = new Map<HandlerCall, Error | undefined>();
    const all = Promise.all(
      calls.map((call) =>
        call.settled.then((error) => {
          errors.set(call, error);
        }),
      ),
    );
    try {
      await Promise.race([all, bound]);
    } finally {
      clearTimeout(timer);
    }
    const failures: HandlerFailure[] = [];
    for (const call of calls) {
      if (errors.has(call)) {
        const error = errors.get(call);
        if (error) failures.push({ handler: call.handler, error });
        continue;
      }
      const error = new MasterHandlerTimeoutError(
        this.election,
        call.handler.label,
        this.timeoutMs,
        term.fencingToken,
      );
      failures.push({ handler: call.handler, error });
      this.watchOverdue(call, term.fencingToken);
    }
    return failures;
  }

  private watchOverdue(call: HandlerCall, fencingToken: number): void {
    const since = Date.now();
    this.overdueCalls.set(call, { label: call.handler.label, fencingToken, since });
    void call.settled.then((error) => {
      this.overdueCalls.delete(call);
      const lateMs = Date.now() - since;
      if (error) {
        this.log.warn(
          HANDLER_LATE_FAILED(call.handler.label, this.election, lateMs, error.message),
        );
      } else {
        this.log.warn(HANDLER_LATE_DONE(call.handler.label, this.election, lateMs));
      }
      if (this.overdueCalls.size === 0) this.onCaughtUp();
    });
  }
}

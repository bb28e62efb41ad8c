/**
 * Notifications to the receiver, in order and one at a time (a handler that
 * returns a promise is awaited before the next), and the election's log
 * lines, each prefixed with the election's name.
 */
import { errorMessage } from '../../shared/errors.js';
import type { ElectionLogger, MasterElectionEventReceiver } from '../types.js';

/** An error's message, for logs. */
export const describe = errorMessage;

export class Notifier {
  /** Settles when every notification queued so far was delivered. */
  private delivery: Promise<void> = Promise.resolve();

  constructor(
    /** The election's name. */
    readonly name: string,
    private readonly receiver: MasterElectionEventReceiver,
    private readonly logger: ElectionLogger,
  ) {}

  /** Queues `fn` (which calls the receiver) behind the notifications before it. */
  deliver(what: string, fn: (receiver: MasterElectionEventReceiver) => unknown): void {
    this.delivery = this.delivery.then(async () => {
      try {
        await fn(this.receiver);
      } catch (err) {
        this.error(`${what} handler failed: ${describe(err)}`);
      }
    });
  }

  /** Resolves once what was queued so far has been delivered. */
  get idle(): Promise<void> {
    return this.delivery;
  }

  /** Logs a non-fatal error and hands it to `electionError`. */
  report(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.warn(e.message);
    this.deliver('electionError', (r) => r.electionError?.(e));
  }

  log(message: string): void {
    this.logger.log(`election ${this.name}: ${message}`);
  }

  /** A line for the operator (the logger's `info`, else `log`). */
  info(message: string): void {
    const line = `election ${this.name}: ${message}`;
    if (this.logger.info) this.logger.info(line);
    else this.logger.log(line);
  }

  warn(message: string): void {
    this.logger.warn(`election ${this.name}: ${message}`);
  }

  error(message: string): void {
    this.logger.error(`election ${this.name}: ${message}`);
  }

  debug(message: string): void {
    this.logger.debug?.(`election ${this.name}: ${message}`);
  }
}

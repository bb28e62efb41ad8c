import { Injectable } from '@nestjs/common';
import type { ElectionEvent } from './master-election-metadata.accessor.js';

/** One discovered handler: a method of a provider or controller instance. */
export interface ElectionHandler {
  readonly instance: object;
  readonly methodName: string;
  /** `Class.method`, for messages. */
  readonly label: string;
}

/** A handler that threw or rejected. */
export interface HandlerFailure {
  readonly handler: ElectionHandler;
  readonly error: Error;
}

const toError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

/**
 * The election event handlers of one registration: filled by the explorer
 * at module init, called by the service as the election's notifications
 * arrive.
 */
@Injectable()
export class MasterElectionOrchestrator {
  private readonly handlers: Record<ElectionEvent, ElectionHandler[]> = {
    becomeMaster: [],
    becomeSlave: [],
    electionError: [],
    electionFatal: [],
  };

  /** Adds a handler of `event`. */
  add(event: ElectionEvent, handler: ElectionHandler): void {
    this.handlers[event].push(handler);
  }

  /** The handlers of `event`, in discovery order. */
  list(event: ElectionEvent): readonly ElectionHandler[] {
    return this.handlers[event];
  }

  /**
   * Calls every handler of `event` with `arg`, concurrently, and resolves
   * once all have settled, with the failures (never rejects).
   */
  async dispatch(event: ElectionEvent, arg: unknown): Promise<HandlerFailure[]> {
    const handlers = this.handlers[event];
    const results = await Promise.allSettled(
      handlers.map(async (handler) => {
        const method = (handler.instance as Record<string, unknown>)[handler.methodName] as (
          arg: unknown,
        ) => unknown;
        await method.call(handler.instance, arg);
      }),
    );
    const failures: HandlerFailure[] = [];
    results.forEach((result, i) => {
      const handler = handlers[i];
      if (result.status === 'rejected' && handler) {
        failures.push({ handler, error: toError(result.reason) });
      }
    });
    return failures;
  }
}

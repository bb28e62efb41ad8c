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

/** One running call of a handler. */
export interface HandlerCall {
  readonly handler: ElectionHandler;
  /** Resolves once the call has settled: with its error, `undefined` when it completed. */
  readonly settled: Promise<Error | undefined>;
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
   * Calls every handler of `event` with `args`, concurrently, and returns
   * one promise per handler that resolves once it has settled: with its
   * error, or `undefined` when it completed (never rejects).
   */
  start(event: ElectionEvent, ...args: unknown[]): HandlerCall[] {
    return this.handlers[event].map((handler) => ({
      handler,
      settled: (async () => {
        const method = (handler.instance as Record<string, unknown>)[handler.methodName] as (
          ...args: unknown[]
        ) => unknown;
        await method.apply(handler.instance, args);
      })().then(
        () => undefined,
        (err: unknown) => toError(err),
      ),
    }));
  }

  /**
   * Calls every handler of `event` with `args`, concurrently, and resolves
   * once all have settled, with the failures (never rejects).
   */
  async dispatch(event: ElectionEvent, ...args: unknown[]): Promise<HandlerFailure[]> {
    const calls = this.start(event, ...args);
    const errors = await Promise.all(calls.map((c) => c.settled));
    const failures: HandlerFailure[] = [];
    errors.forEach((error, i) => {
      const handler = calls[i]?.handler;
      if (error && handler) failures.push({ handler, error });
    });
    return failures;
  }
}

/** Shared harness of the Nest integration tests: an embedded server, apps, and waiting on events. */
import { Logger, type INestApplicationContext, type ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterEach, beforeEach, vi, type MockInstance } from 'vitest';
import { firstValueFrom, filter, ReplaySubject, throwError, timeout, type Observable } from 'rxjs';
import {
  getMasterElectionToken,
  MasterElectionService,
  type ElectionState,
} from 'nestjs-master-election';
import { DoozerServer } from 'nestjs-master-election/testing';

/** Short election timings for tests. */
export const FAST = { leaseMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 200 } as const;

/** How long a test waits for anything before failing (generous: loaded 2-core CI). */
export const WAIT_MS = 20_000;

/** Waits for the first value of `source` matching `predicate`, failing after `ms`. */
export function waitFor<T>(
  source: Observable<T>,
  predicate: (value: T) => boolean,
  what: string,
  ms = WAIT_MS,
): Promise<T> {
  return firstValueFrom(
    source.pipe(
      filter(predicate),
      timeout({
        first: ms,
        with: () => throwError(() => new Error(`timed out after ${ms} ms waiting for ${what}`)),
      }),
    ),
  );
}

/** Waits until `service` reports `role`. */
export function waitForRole(
  service: MasterElectionService,
  role: ElectionState['role'],
): Promise<ElectionState> {
  return waitFor(service.state$, (s) => s.role === role, `${service.address} to be ${role}`);
}

/**
 * Of two apps of one election, waits for the master, and for the other to
 * follow it.
 */
export async function leaderAndFollower(
  a: TestApp,
  b: TestApp,
): Promise<{ master: ElectionState; leader: TestApp; follower: TestApp }> {
  const master = await Promise.race([a, b].map((x) => waitForRole(x.service(), 'master')));
  const [leader, follower] = a.service().address === master.master ? [a, b] : [b, a];
  await waitForRole(follower.service(), 'slave');
  return { master, leader, follower };
}

/** Silences `Logger.prototype[level]` (Nest's logger) until the harness closes; returns the spy. */
export function muteLogger(
  h: Harness,
  level: 'debug' | 'warn' | 'error',
): MockInstance<(message: unknown, ...rest: unknown[]) => void> {
  const spy = vi.spyOn(Logger.prototype, level).mockImplementation(() => undefined);
  h.defer(() => spy.mockRestore());
  return spy as MockInstance<(message: unknown, ...rest: unknown[]) => void>;
}

/** Records what a provider's decorated methods received, in order. */
export class EventLog<E = { type: string; value: unknown }> {
  readonly all: E[] = [];
  readonly events$ = new ReplaySubject<E>();

  push(event: E): void {
    this.all.push(event);
    this.events$.next(event);
  }

  next(predicate: (e: E) => boolean, what: string): Promise<E> {
    return waitFor(this.events$, predicate, what);
  }
}

/** A started application of a test. */
export interface TestApp {
  readonly app: INestApplicationContext;
  /** The default registration's service, or the one registered as `name`. */
  service(name?: string): MasterElectionService;
  close(): Promise<void>;
}

/** One embedded server, and every app and resource of a test, closed by {@link Harness.close}. */
export class Harness {
  server!: DoozerServer;
  private closers: (() => unknown)[] = [];

  async start(): Promise<this> {
    this.server = await DoozerServer.start({ heartbeatMs: false });
    const server = this.server;
    this.defer(() => server.close());
    return this;
  }

  /** Runs `fn` at {@link close}, before what was deferred earlier. */
  defer(fn: () => unknown): void {
    this.closers.push(fn);
  }

  /**
   * Compiles and initialises an application. `http` makes a Nest HTTP
   * application (never listening) with shutdown hooks enabled.
   */
  async app(metadata: ModuleMetadata, options: { http?: boolean } = {}): Promise<TestApp> {
    const moduleRef = await Test.createTestingModule(metadata).compile();
    let app: INestApplicationContext = moduleRef;
    if (options.http) {
      const http = moduleRef.createNestApplication({ logger: false });
      http.enableShutdownHooks();
      app = http;
    }
    let closed = false;
    let initError: unknown;
    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      try {
        await app.close();
      } catch (err) {
        // Nest 11's close() rethrows the error of a failed init(); Nest 12's does not.
        if (initError === undefined || err !== initError) throw err;
      }
    };
    this.defer(close);
    try {
      await app.init();
    } catch (err) {
      initError = err;
      throw err;
    }
    return {
      app,
      close,
      service: (name) =>
        app.get<MasterElectionService>(
          name === undefined ? MasterElectionService : getMasterElectionToken(name),
          { strict: false },
        ),
    };
  }

  /** Closes every app, then the resources, then the server (reverse order of creation). */
  async close(): Promise<void> {
    const closers = this.closers.reverse();
    this.closers = [];
    const errors: unknown[] = [];
    for (const fn of closers) {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  }
}

/** A harness started before each test of the enclosing `describe` and closed after it. */
export function useHarness(): Harness {
  const h = new Harness();
  beforeEach(async () => {
    await h.start();
  });
  afterEach(async () => {
    await h.close();
  });
  return h;
}

/** One line a {@link RecordingLogger} received. */
export interface LogLine {
  readonly level: 'log' | 'warn' | 'error' | 'debug' | 'verbose' | 'fatal';
  readonly message: string;
  /** The stack given with an error line, if any. */
  readonly stack: string | undefined;
  readonly at: number;
}

/** A Nest `LoggerService` for the `logger` option: records every line. */
export class RecordingLogger {
  readonly lines = new EventLog<LogLine>();

  private push(level: LogLine['level'], message: unknown, stack?: unknown): void {
    this.lines.push({
      level,
      message: String(message),
      stack: typeof stack === 'string' ? stack : undefined,
      at: performance.now(),
    });
  }

  log(message: unknown): void {
    this.push('log', message);
  }
  warn(message: unknown): void {
    this.push('warn', message);
  }
  error(message: unknown, stack?: unknown): void {
    this.push('error', message, stack);
  }
  debug(message: unknown): void {
    this.push('debug', message);
  }

  /** The lines of `level` whose message matches `pattern`. */
  find(level: LogLine['level'], pattern: RegExp): LogLine[] {
    return this.lines.all.filter((l) => l.level === level && pattern.test(l.message));
  }

  /** Waits for a line of `level` matching `pattern`. */
  next(level: LogLine['level'], pattern: RegExp): Promise<LogLine> {
    return this.lines.next(
      (l) => l.level === level && pattern.test(l.message),
      `${level} ${pattern}`,
    );
  }
}

/**
 * Metrics of a storage port (lib/election/port.ts): a store whose locks time
 * each renewal and count the errors their operations throw, by the lock's
 * own classification. It wraps any backend; the engine sees a store like any other.
 */
import type { Attributes, Counter, Histogram } from '@opentelemetry/api';
import type {
  CreateResult,
  ElectionLock,
  ElectionStore,
  LockCallOptions,
  LockEvent,
  LockRead,
  LockRequest,
  LockTerm,
  LockVersion,
  RenewResult,
} from '../election/index.js';
import { resolveMeter } from './api.js';
import { ATTR, DURATION_BUCKETS_S, METRIC } from './names.js';
import type { MetricsOptions } from './options.js';

/** Options of {@link instrumentStore}: the backend's name comes from the store. */
export type StoreMetricsOptions = Omit<MetricsOptions, 'backend'> & {
  /** Monotonic time in milliseconds, for the renewal durations. Default `performance.now()`. */
  readonly now?: () => number;
};

interface Instruments {
  readonly renewal: Histogram;
  readonly errors: Counter;
  readonly now: () => number;
}

/**
 * Wraps `store` so that its locks record `master_election.renewal.duration`
 * (each `renew()`, by outcome) and `master_election.lock.errors` (each error
 * an operation throws, by operation, `classify()` kind and `error.type`).
 * Results and errors pass through unchanged.
 *
 * With no `meterProvider` and `@opentelemetry/api` absent, resolves with
 * `store` itself.
 */
export async function instrumentStore(
  store: ElectionStore,
  options: StoreMetricsOptions = {},
): Promise<ElectionStore> {
  const meter = await resolveMeter(options);
  if (!meter) return store;
  const instruments: Instruments = {
    renewal: meter.createHistogram(METRIC.renewalDuration, {
      description: "Time one renewal of the master's lease took, by outcome.",
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    }),
    errors: meter.createCounter(METRIC.lockErrors, {
      description: 'Errors thrown by lock operations, by operation, kind and type.',
      unit: '{error}',
    }),
    now: options.now ?? (() => performance.now()),
  };
  return {
    backend: store.backend,
    openLock: async (request: LockRequest) =>
      new InstrumentedLock(await store.openLock(request), request.name, instruments),
    toString: () => store.toString(),
  };
}

class InstrumentedLock implements ElectionLock {
  private readonly base: Attributes;

  constructor(
    private readonly lock: ElectionLock,
    name: string,
    private readonly m: Instruments,
  ) {
    this.base = { [ATTR.name]: name, [ATTR.backend]: lock.backend };
  }

  get backend(): string {
    return this.lock.backend;
  }
  get id(): string {
    return this.lock.id;
  }
  get capabilities(): ElectionLock['capabilities'] {
    return this.lock.capabilities;
  }

  read(options: LockCallOptions): Promise<LockRead> {
    return this.counted('read', () => this.lock.read(options));
  }

  async *watch(from: LockVersion, signal: AbortSignal): AsyncIterable<LockEvent> {
    try {
      yield* this.lock.watch(from, signal);
    } catch (err) {
      this.count('watch', err);
      throw err;
    }
  }

  create(basis: LockVersion, options: LockCallOptions): Promise<CreateResult> {
    return this.counted('create', () => this.lock.create(basis, options));
  }

  async renew(term: LockTerm, attempt: number, options: LockCallOptions): Promise<RenewResult> {
    const start = this.m.now();
    const record = (outcome: string): void =>
      this.m.renewal.record(Math.max(0, this.m.now() - start) / 1000, {
        ...this.base,
        [ATTR.outcome]: outcome,
      });
    try {
      const result = await this.lock.renew(term, attempt, options);
      record(result.kind);
      return result;
    } catch (err) {
      record('error');
      this.count('renew', err);
      throw err;
    }
  }

  release(term: LockTerm, options: LockCallOptions): Promise<'released' | 'not-held'> {
    return this.counted('release', () => this.lock.release(term, options));
  }

  depose(version: LockVersion, options: LockCallOptions): Promise<'deposed' | 'changed'> {
    return this.counted('depose', () => this.lock.depose(version, options));
  }

  classify(err: unknown): ReturnType<ElectionLock['classify']> {
    return this.lock.classify(err);
  }
  status(): ReturnType<ElectionLock['status']> {
    return this.lock.status();
  }
  close(): Promise<void> {
    return this.lock.close();
  }
  toString(): string {
    return this.lock.toString();
  }

  private async counted<T>(operation: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      this.count(operation, err);
      throw err;
    }
  }

  private count(operation: string, err: unknown): void {
    let kind: string;
    try {
      kind = this.lock.classify(err);
    } catch {
      kind = 'unknown';
    }
    this.m.errors.add(1, {
      ...this.base,
      [ATTR.operation]: operation,
      [ATTR.errorKind]: kind,
      [ATTR.errorType]: err instanceof Error && err.name !== '' ? err.name : typeof err,
    });
  }
}

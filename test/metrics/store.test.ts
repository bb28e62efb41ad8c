/**
 * instrumentStore: the storage port contract holds through the wrapper (on
 * the in-memory store), and renewals and lock errors are recorded.
 */
import {
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram,
} from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../lib/election/index.js';
import type { LockRequest } from '../../lib/election/index.js';
import { instrumentStore } from '../../lib/index.js';
import { MemoryElectionStore, MemoryStoreError } from '../../lib/testing/index.js';
import { lockContract } from '../contract/lock-contract.js';

class PullReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const providers: MeterProvider[] = [];
function provider(): { provider: MeterProvider; reader: PullReader } {
  const reader = new PullReader();
  const p = new MeterProvider({ readers: [reader] });
  providers.push(p);
  return { provider: p, reader };
}

lockContract('memory store through instrumentStore', async () => {
  const memory = new MemoryElectionStore();
  const store = await instrumentStore(memory, { meterProvider: provider().provider });
  return {
    connect: () => Promise.resolve(store),
    forceReset: () => Promise.resolve(memory.reset()),
    teardown: async () => {
      for (const p of providers.splice(0)) await p.shutdown();
    },
  };
});

const CALL = { timeoutMs: 1000 };
const req = (name: string): LockRequest => ({
  name,
  address: '127.0.0.1:1',
  participating: true,
  timing: { leaseMs: 1000, renewDeadlineMs: 700, retryPeriodMs: 200 },
  clock: systemClock,
  logger: { log: () => {}, warn: () => {}, error: () => {} },
});

async function points(reader: PullReader, name: string): Promise<DataPoint<unknown>[]> {
  const { resourceMetrics } = await reader.collect();
  const metric = resourceMetrics.scopeMetrics
    .flatMap((s) => s.metrics)
    .find((m) => m.descriptor.name === name);
  return metric?.dataPoints ?? [];
}

describe('instrumentStore records', () => {
  afterEach(async () => {
    for (const p of providers.splice(0)) await p.shutdown();
  });

  it('each renewal by outcome, and lock errors by operation, kind and type', async () => {
    const memory = new MemoryElectionStore();
    const { provider: meterProvider, reader } = provider();
    // A clock that moves 5 ms per reading: each renewal takes 5 ms on it.
    let t = 0;
    const store = await instrumentStore(memory, { meterProvider, now: () => (t += 5) });
    expect(store.backend).toBe('memory');
    const lock = await store.openLock(req('jobs'));
    const won = await lock.create((await lock.read(CALL)).version, CALL);
    if (won.kind !== 'won') throw new Error('not won');
    const renewed = await lock.renew(won.term, 1, CALL);
    expect(renewed.kind).toBe('renewed');
    memory.loseNextAnswer();
    const lost = await lock.renew(won.term, 2, CALL).catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(MemoryStoreError);
    memory.failNextWrite('fatal');
    await expect(lock.release(won.term, CALL)).rejects.toBeInstanceOf(MemoryStoreError);

    const renewals = (await points(
      reader,
      'master_election.renewal.duration',
    )) as DataPoint<Histogram>[];
    const byOutcome: Record<string, Histogram> = Object.fromEntries(
      renewals.map((p) => [String(p.attributes['election.renewal.outcome']), p.value]),
    );
    expect(Object.keys(byOutcome).sort()).toEqual(['error', 'renewed']);
    expect(byOutcome.renewed).toMatchObject({ count: 1, sum: 0.005 });
    expect(byOutcome.error).toMatchObject({ count: 1, sum: 0.005 });
    expect(renewals[0]!.attributes).toMatchObject({
      'election.name': 'jobs',
      'election.backend': 'memory',
    });

    const errors = await points(reader, 'master_election.lock.errors');
    const rows = errors.map((p) => ({ ...p.attributes, value: p.value }));
    expect(rows).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          'election.lock.operation': 'renew',
          'election.error.kind': 'transient',
          'error.type': 'MemoryStoreError',
          value: 1,
        }),
        expect.objectContaining({
          'election.lock.operation': 'release',
          'election.error.kind': 'fatal',
          value: 1,
        }),
      ]),
    );
    expect(rows).toHaveLength(2);
    await lock.close();
  });

  it('a watch that throws is counted; results pass through unchanged', async () => {
    const memory = new MemoryElectionStore();
    const { provider: meterProvider, reader } = provider();
    const store = await instrumentStore(memory, { meterProvider });
    const lock = await store.openLock(req('w'));
    const read = await lock.read(CALL);
    // A version from another store is refused by the lock: its watch throws.
    const other = await new MemoryElectionStore().openLock(req('w'));
    const foreign = (await other.read(CALL)).version;
    const abort = new AbortController();
    const iter = lock.watch(foreign, abort.signal)[Symbol.asyncIterator]();
    const err = await iter.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const errors = await points(reader, 'master_election.lock.errors');
    expect(errors.map((p) => p.attributes['election.lock.operation'])).toEqual(['watch']);
    expect(read.record).toBeNull();
    abort.abort();
    await lock.close();
    await other.close();
  });
});

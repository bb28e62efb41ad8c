/**
 * The no-op path: without a MeterProvider and with `@opentelemetry/api`
 * failing to load, nothing is attached and nothing throws; with the API
 * present, the global provider is used.
 */
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type CollectionResult } from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { DoozerClient } from '../../lib/doozer/index.js';
import { type MasterElectionEventReceiver } from '../../lib/election/index.js';
import { MasterElectionClient } from '../../lib/backends/doozer/index.js';
import { instrumentElection, instrumentReceiver, instrumentStore } from '../../lib/index.js';
import { DoozerServer, ManualClock, MemoryElectionStore } from '../../lib/testing/index.js';
import { waitFor } from '../support/wait.js';

/** A pull reader: `collect()` on demand. */
class PullReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const names = (r: CollectionResult): string[] =>
  r.resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name));

const receiver: MasterElectionEventReceiver = { becomeMaster: () => {}, becomeSlave: () => {} };
const missing = (): Promise<never> => {
  const err = new Error("Cannot find module '@opentelemetry/api'") as Error & { code: string };
  err.code = 'MODULE_NOT_FOUND';
  return Promise.reject(err);
};

describe('metrics without @opentelemetry/api', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
    metrics.disable();
  });

  it('instrumentElection attaches nothing: the same no-op detach, state$ untouched', async () => {
    const server = await DoozerServer.start({ heartbeatMs: 0 });
    cleanup.push(() => server.close());
    const client = await DoozerClient.connect(server.uri);
    cleanup.push(() => client.close());
    const clock = new ManualClock();
    const election = await MasterElectionClient.create(
      client,
      'jobs',
      '10.0.0.1:80',
      true,
      receiver,
      {
        leaseMs: 1000,
        renewDeadlineMs: 700,
        retryPeriodMs: 200,
        electionJitterMs: 0,
        clock,
      },
    );
    cleanup.push(() => election.close());
    // A client whose getters and stream throw if read at all: the no-op path never reads them.
    const untouchable = new Proxy(election, {
      get: () => {
        throw new Error('the no-op path read the client');
      },
    });
    const d1 = await instrumentElection(untouchable, { importer: missing });
    const d2 = await instrumentElection(untouchable, {
      importer: () => Promise.resolve({ not: 'the api' }),
    });
    expect(d1).toBe(d2);
    expect(() => d1()).not.toThrow();
    // The election runs on, undisturbed.
    clock.advance(1000);
    await waitFor(() => election.isMaster(), 'a master', { step: () => clock.advance(0) });
  });

  it('instrumentReceiver and instrumentStore hand back what they were given', async () => {
    expect(await instrumentReceiver(receiver, { name: 'jobs', importer: missing })).toBe(receiver);
    const store = new MemoryElectionStore();
    expect(await instrumentStore(store, { importer: missing })).toBe(store);
  });

  it('with the API present and no meterProvider, records on the global provider', async () => {
    const reader = new PullReader();
    const provider = new MeterProvider({ readers: [reader] });
    cleanup.push(() => provider.shutdown());
    expect(metrics.setGlobalMeterProvider(provider)).toBe(true);
    const r = await instrumentReceiver(receiver, { name: 'jobs' });
    await r.electionError?.(new TypeError('boom'));
    const collected = await reader.collect();
    expect(names(collected)).toContain('master_election.errors');
  });
});

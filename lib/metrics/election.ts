/**
 * Metrics of one election client, observed from outside: its public state
 * stream (`state$`), its getters, and the abort signal of each of its master
 * terms. The engine is not touched; detaching leaves nothing behind.
 */
import type { Attributes, BatchObservableCallback, Meter } from '@opentelemetry/api';
import type { MasterElection, MasterTerm } from '../election/index.js';
import { resolveMeter } from './api.js';
import { ATTR, DURATION_BUCKETS_S, METRIC } from './names.js';
import type { DetachMetrics, MetricsOptions } from './options.js';

/**
 * What the metrics read of an election: the public API that the engine's
 * `MasterElection` (and so `MasterElectionClient`) and the Nest module's `MasterElectionService` share.
 */
export type ObservedElection = Pick<
  MasterElection,
  'name' | 'address' | 'state$' | 'currentTerm' | 'isMaster'
>;

/** Options of {@link instrumentElection}. */
export interface ElectionMetricsOptions extends MetricsOptions {
  /** Monotonic time in milliseconds, for the no-master durations. Default `performance.now()`. */
  readonly now?: () => number;
}

/** What {@link instrumentElection} returns when there is nothing to record on: the same function every time. */
const NOOP: DetachMetrics = () => {};

/** The reason a term's signal aborted with: the engine's `StepDownReason`, read without depending on the class's identity. */
export function endReason(reason: unknown): string {
  const r = (reason as { reason?: unknown } | null | undefined)?.reason;
  return typeof r === 'string' && r !== '' ? r : 'unknown';
}

/**
 * Records the metrics of election `client` (see docs/metrics.md): whether
 * this process is master, the current fencing token, terms started (by
 * holder) and ended (by reason), and the time with no master seen.
 *
 * With no `meterProvider` and `@opentelemetry/api` not installed (or not
 * loadable), it attaches nothing and resolves with a no-op.
 *
 * @returns a function that stops recording (idempotent).
 */
export async function instrumentElection(
  client: ObservedElection,
  options: ElectionMetricsOptions = {},
): Promise<DetachMetrics> {
  const meter = await resolveMeter(options);
  return meter ? attach(meter, client, options) : NOOP;
}

function attach(
  meter: Meter,
  client: ObservedElection,
  options: ElectionMetricsOptions,
): DetachMetrics {
  const now = options.now ?? (() => performance.now());
  const base: Attributes = {
    [ATTR.name]: client.name,
    [ATTR.backend]: options.backend ?? 'doozer',
  };
  const isMaster = meter.createObservableGauge(METRIC.isMaster, {
    description: 'Whether this process is master of the election (1) or not (0).',
    unit: '1',
  });
  const token = meter.createObservableGauge(METRIC.fencingToken, {
    description: 'Fencing token of the current master term, 0 while no master is known.',
    unit: '1',
  });
  const started = meter.createCounter(METRIC.termsStarted, {
    description: 'Master terms seen to begin, by holder (this process or another).',
    unit: '{term}',
  });
  const ended = meter.createCounter(METRIC.termsEnded, {
    description: "This process's master terms that ended, by reason.",
    unit: '{term}',
  });
  const gap = meter.createHistogram(METRIC.noMasterDuration, {
    description: 'Time with no master seen: from a master seen gone to the next master seen.',
    unit: 's',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
  });

  let lastTerm = 0;
  /** The term of the master now known (0: none). */
  let current = 0;
  const observe: BatchObservableCallback = (result) => {
    result.observe(isMaster, client.isMaster() ? 1 : 0, base);
    result.observe(token, current, base);
  };
  meter.addBatchObservableCallback(observe, [isMaster, token]);

  // Terms of this process whose end we wait for, with their abort listeners.
  const watched = new Map<MasterTerm, () => void>();
  const watchTerm = (term: MasterTerm | undefined): void => {
    if (!term || watched.has(term) || term.signal.aborted) return;
    const onAbort = (): void => {
      watched.delete(term);
      ended.add(1, { ...base, [ATTR.endReason]: endReason(term.signal.reason) });
    };
    watched.set(term, onAbort);
    term.signal.addEventListener('abort', onAbort, { once: true });
  };

  /** When the master was seen gone; undefined while one is known (or stopped). */
  let gapSince: number | undefined;
  const subscription = client.state$.subscribe(({ role, master, term }) => {
    current = master === '' || role === 'stopped' ? 0 : term;
    if (role === 'stopped') {
      gapSince = undefined;
      return;
    }
    if (master === '' || term === 0) {
      gapSince ??= now();
      return;
    }
    if (role === 'master') watchTerm(client.currentTerm);
    if (term === lastTerm) return;
    // By address, not role: the Nest service shows its own new term as a
    // candidate's until its @OnBecomeMaster handlers have run.
    started.add(1, { ...base, [ATTR.holder]: master === client.address ? 'self' : 'other' });
    // A change seen from one master straight to the next had no gap to see.
    if (gapSince !== undefined) gap.record(Math.max(0, now() - gapSince) / 1000, base);
    else if (lastTerm !== 0) gap.record(0, base);
    gapSince = undefined;
    lastTerm = term;
  });

  let detached = false;
  return () => {
    if (detached) return;
    detached = true;
    subscription.unsubscribe();
    for (const [term, onAbort] of watched) term.signal.removeEventListener('abort', onAbort);
    watched.clear();
    meter.removeBatchObservableCallback(observe, [isMaster, token]);
  };
}

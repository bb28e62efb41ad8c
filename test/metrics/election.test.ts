/**
 * instrumentElection on real elections: two participants on the embedded
 * Doozer server, each with its own SDK MeterProvider (two processes' worth of
 * metrics) exported by the OpenTelemetry Prometheus exporter and scraped
 * over HTTP on a free loopback port.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DoozerClient } from '../../lib/doozer/index.js';
import { type MasterElectionEventReceiver } from '../../lib/election/index.js';
import { MasterElectionClient } from '../../lib/backends/doozer/index.js';
import { instrumentElection, instrumentReceiver, type DetachMetrics } from '../../lib/index.js';
import { DoozerServer, ManualClock } from '../../lib/testing/index.js';
import { waitFor } from '../support/wait.js';
import { ScrapedProvider, value, type Sample } from './prometheus.js';

const NAME = 'jobs';
const TIMING = { leaseMs: 10_000, renewDeadlineMs: 7_000, retryPeriodMs: 2_000 };

let server: DoozerServer;
const cleanup: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  server = await DoozerServer.start({ heartbeatMs: 0 });
});

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
  await server.close();
});

interface Participant {
  readonly address: string;
  readonly election: MasterElectionClient;
  readonly metrics: ScrapedProvider;
  detach: DetachMetrics;
}

const quiet: MasterElectionEventReceiver = { becomeMaster: () => {}, becomeSlave: () => {} };

async function join(address: string, clock: ManualClock): Promise<Participant> {
  const metrics = await ScrapedProvider.start();
  cleanup.push(() => metrics.close());
  const client = await DoozerClient.connect(server.uri);
  cleanup.push(() => client.close());
  const options = { meterProvider: metrics.provider, backend: 'doozer' };
  const receiver = await instrumentReceiver(quiet, { ...options, name: NAME });
  const election = await MasterElectionClient.create(client, NAME, address, true, receiver, {
    ...TIMING,
    electionJitterMs: 0,
    clock,
  });
  cleanup.push(() => election.close());
  const detach = await instrumentElection(election, options);
  cleanup.push(() => Promise.resolve(detach()));
  return { address, election, metrics, detach };
}

const labels = { election_name: NAME, election_backend: 'doozer' };
const isMaster = (s: Sample[]): number => value(s, 'master_election_is_master', labels);
const started = (s: Sample[], holder: 'self' | 'other'): number =>
  value(s, 'master_election_terms_started_total', { ...labels, election_term_holder: holder });
const ended = (s: Sample[], reason: string): number =>
  value(s, 'master_election_terms_ended_total', { ...labels, election_term_end_reason: reason });
const gaps = (s: Sample[]): number => value(s, 'master_election_no_master_duration_count', labels);
const gapSeconds = (s: Sample[]): number =>
  value(s, 'master_election_no_master_duration_sum', labels);
const token = (s: Sample[]): number => value(s, 'master_election_fencing_token', labels);

/** Both participants have seen `master` as master of a term other than `not`. */
async function agreeOn(
  ps: Participant[],
  master: Participant,
  clock: ManualClock,
  not = 0,
): Promise<number> {
  await waitFor(
    () =>
      ps.every((p) => {
        const s = p.election.state;
        return s.master === master.address && s.term !== not && s.term !== 0;
      }),
    `every participant to follow ${master.address}`,
    { step: () => clock.advance(0) },
  );
  return master.election.state.term;
}

describe('instrumentElection (Prometheus scrape)', () => {
  it('shows one master, counts terms, records the handover gap after a resign', async () => {
    const clock = new ManualClock();
    const a = await join('10.0.0.1:80', clock);
    const b = await join('10.0.0.2:80', clock);
    const both = [a, b];

    // Nobody is master yet: a fresh store's missing lease is waited out first.
    for (const p of both) {
      const { samples } = await p.metrics.scrape();
      expect(isMaster(samples)).toBe(0);
      expect(token(samples)).toBe(0);
      expect(started(samples, 'self') + started(samples, 'other')).toBe(0);
    }

    clock.advance(TIMING.leaseMs);
    await waitFor(() => both.some((p) => p.election.isMaster()), 'a first master', {
      step: () => clock.advance(0),
    });
    const first = both.find((p) => p.election.isMaster())!;
    const second = first === a ? b : a;
    const term1 = await agreeOn(both, first, clock);

    let s1 = (await first.metrics.scrape()).samples;
    let s2 = (await second.metrics.scrape()).samples;
    expect([isMaster(s1), isMaster(s2)]).toEqual([1, 0]);
    expect([token(s1), token(s2)]).toEqual([term1, term1]);
    expect([started(s1, 'self'), started(s1, 'other')]).toEqual([1, 0]);
    expect([started(s2, 'self'), started(s2, 'other')]).toEqual([0, 1]);
    expect(gaps(s1)).toBe(1); // the first election's wait
    expect(gaps(s2)).toBe(1);

    // Handover: the master resigns, the other takes over at once.
    await first.election.resign();
    const term2 = await agreeOn(both, second, clock, term1);
    expect(term2).toBeGreaterThan(term1);

    s1 = (await first.metrics.scrape()).samples;
    s2 = (await second.metrics.scrape()).samples;
    expect(isMaster(s1) + isMaster(s2)).toBe(1);
    expect([isMaster(s1), isMaster(s2)]).toEqual([0, 1]);
    expect([token(s1), token(s2)]).toEqual([term2, term2]);
    expect([started(s1, 'self'), started(s1, 'other')]).toEqual([1, 1]);
    expect([started(s2, 'self'), started(s2, 'other')]).toEqual([1, 1]);
    expect(ended(s1, 'resigned')).toBe(1);
    expect(ended(s2, 'resigned')).toBe(0);
    // Each saw the handover as one more gap (the old master saw itself step down first).
    expect(gaps(s1)).toBe(2);
    expect(gaps(s2)).toBe(2);
    expect(gapSeconds(s1)).toBeGreaterThanOrEqual(0);
    // The exposition names the backend and is a well-formed histogram.
    const { text } = await first.metrics.scrape();
    expect(text).toMatch(/^# TYPE master_election_no_master_duration histogram$/m);
    expect(text).toMatch(/^master_election_no_master_duration_bucket\{.*le="\+Inf".*\} 2$/m);
  });

  it('counts the end of a term by its reason (forced), and detach stops recording', async () => {
    const clock = new ManualClock();
    const a = await join('10.0.0.1:80', clock);
    clock.advance(TIMING.leaseMs);
    await waitFor(() => a.election.isMaster(), 'a master', { step: () => clock.advance(0) });
    await a.election.forceMasterElection();
    // A lone participant wins the forced election again.
    await waitFor(() => a.election.isMaster(), 'a master again', { step: () => clock.advance(0) });
    let s = (await a.metrics.scrape()).samples;
    expect(ended(s, 'forced')).toBe(1);
    expect(started(s, 'self')).toBe(2);
    expect(isMaster(s)).toBe(1);

    a.detach();
    a.detach(); // idempotent
    await a.election.resign();
    s = (await a.metrics.scrape()).samples;
    expect(ended(s, 'resigned')).toBe(0);
    expect(started(s, 'self')).toBe(2);
    // The gauge's callback is gone: the exporter shows the last value it was
    // given (1) although the client is no longer master.
    expect(a.election.isMaster()).toBe(false);
    expect(isMaster(s)).toBe(1);
  });

  it('counts the errors reported to the receiver by kind and type', async () => {
    const clock = new ManualClock();
    const a = await join('10.0.0.1:80', clock);
    clock.advance(TIMING.leaseMs);
    await waitFor(() => a.election.isMaster(), 'a master', { step: () => clock.advance(0) });
    // The renew deadline passes with no renewal: an involuntary step-down, reported as an error.
    clock.advance(TIMING.renewDeadlineMs);
    await waitFor(() => !a.election.isMaster(), 'the master to step down');
    await a.election.whenIdle();
    const s = (await a.metrics.scrape()).samples;
    expect(ended(s, 'renew-deadline')).toBe(1);
    expect(
      value(s, 'master_election_errors_total', {
        ...labels,
        election_error_kind: 'error',
        error_type: 'MasterStepDownError',
      }),
    ).toBe(1);
  });
});

/**
 * The sample application in this process: built with @nestjs/testing from
 * `AppModule`, listening on loopback as `main.ts` does, against an embedded
 * Doozer server.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { firstValueFrom, filter, ReplaySubject, take, throwError, timeout, toArray } from 'rxjs';
import type { Observable } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MasterElectionService, type ElectionRole } from 'nestjs-master-election';
import { DoozerServer } from 'nestjs-master-election/testing';
import { AppModule } from '../../sample/src/app.module.js';
import { SampleConfigError, storeTarget, validateEnv } from '../../sample/src/config.js';
import type { ElectionStatus } from '../../sample/src/election.controller.js';
import { LeaderJob, type LeaderJobRun } from '../../sample/src/leader-job.service.js';
import { listenOnLoopback } from '../../sample/src/loopback-listener.js';
import { parse, value, type Sample } from '../metrics/prometheus.js';

/** Limit of every wait: generous, for a loaded 2-core machine. */
const WAIT_MS = 20_000;

function waitFor<T>(source: Observable<T>, predicate: (v: T) => boolean, what: string): Promise<T> {
  return firstValueFrom(
    source.pipe(
      filter(predicate),
      timeout({
        first: WAIT_MS,
        with: () => throwError(() => new Error(`timed out waiting for ${what}`)),
      }),
    ),
  );
}

/** One running replica of the sample app. */
interface Replica {
  readonly app: INestApplication;
  readonly port: number;
  readonly election: MasterElectionService;
  /** Every run of its leader-only job since it started. */
  readonly runs: ReplaySubject<LeaderJobRun>;
  get(path: string): Promise<{ status: number; body: unknown }>;
  /** GET /metrics, parsed. */
  metrics(): Promise<Sample[]>;
  close(): Promise<void>;
}

describe('sample app', () => {
  let server: DoozerServer;
  const closers: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    server = await DoozerServer.start({ heartbeatMs: false });
    vi.stubEnv('DOOZER_URI', server.uri);
    vi.stubEnv('ELECTION_NAME', 'sample-test');
    vi.stubEnv('ELECTION_LEASE_MS', '1000');
    vi.stubEnv('ELECTION_RENEW_DEADLINE_MS', '600');
    vi.stubEnv('ELECTION_RETRY_PERIOD_MS', '200');
  });

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await server.close();
    vi.unstubAllEnvs();
  });

  async function startReplica(): Promise<Replica> {
    const listener = await listenOnLoopback(0);
    let close = (): Promise<void> =>
      new Promise((resolve) => listener.handle.close(() => resolve()));
    closers.push(() => close());
    const moduleRef = await Test.createTestingModule({
      imports: [AppModule.forRoot({ httpPort: listener.port })],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    let closing: Promise<void> | undefined;
    close = () => (closing ??= app.close());
    const runs = new ReplaySubject<LeaderJobRun>();
    app.get(LeaderJob).runs$.subscribe(runs);
    await app.listen(listener.handle as unknown as number);
    return {
      app,
      port: listener.port,
      election: app.get(MasterElectionService),
      runs,
      get: async (path) => {
        const res = await fetch(`http://127.0.0.1:${listener.port}${path}`);
        return { status: res.status, body: await res.json() };
      },
      metrics: async () => {
        const res = await fetch(`http://127.0.0.1:${listener.port}/metrics`);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
        return parse(await res.text());
      },
      close: () => close(),
    };
  }

  const role = (r: Replica, wanted: ElectionRole) =>
    waitFor(r.election.state$, (s) => s.role === wanted, `${r.election.address} to be ${wanted}`);

  it('answers GET /election and GET /health on the master and on a slave', async () => {
    const a = await startReplica();
    const { term } = await role(a, 'master');
    const b = await startReplica();
    await role(b, 'slave');

    const addressA = `127.0.0.1:${a.port}`;
    const addressB = `127.0.0.1:${b.port}`;
    expect(a.election.address).toBe(addressA);
    expect(await a.get('/election')).toEqual({
      status: 200,
      body: { role: 'master', master: addressA, term, address: addressA } satisfies ElectionStatus,
    });
    expect(await b.get('/election')).toEqual({
      status: 200,
      body: { role: 'slave', master: addressA, term, address: addressB } satisfies ElectionStatus,
    });

    const health = await b.get('/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({
      status: 'ok',
      details: {
        election: {
          status: 'up',
          election: 'sample-test',
          role: 'slave',
          master: addressA,
          term,
          connected: true,
        },
      },
    });

    // Doozer gone: the replica still answers, but reports itself unhealthy.
    await server.stop();
    await vi.waitFor(() => expect(b.election.health().connected).toBe(false), {
      timeout: WAIT_MS,
    });
    const down = await b.get('/health');
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({
      status: 'error',
      error: { election: { status: 'down', connected: false } },
    });
  });

  it('runs the @MasterOnly interval job only on the master, and moves it on a handover', async () => {
    const [a, b] = await Promise.all([startReplica(), startReplica()]);
    const first = await Promise.race([role(a, 'master'), role(b, 'master')]);
    const [master, slave] = first.master === a.election.address ? [a, b] : [b, a];

    const twoRuns = await firstValueFrom(master.runs.pipe(take(2), toArray()));
    expect(twoRuns).toEqual([
      { run: 1, fencingToken: first.term },
      { run: 2, fencingToken: first.term },
    ]);
    expect(slave.election.isMaster()).toBe(false);
    let slaveRuns = 0;
    slave.runs.subscribe(() => slaveRuns++);
    expect(slaveRuns).toBe(0); // two intervals fired on the slave too, and were skipped

    // The master shuts down and resigns; the slave takes over without waiting out the lease.
    await master.close();
    const next = await role(slave, 'master');
    expect(next.term).toBeGreaterThan(first.term);
    const run = await waitFor(slave.runs, () => true, 'a run on the new master');
    expect(run).toEqual({ run: 1, fencingToken: next.term });
  });

  it('GET /metrics: the values change on a handover', async () => {
    const [a, b] = await Promise.all([startReplica(), startReplica()]);
    const first = await Promise.race([role(a, 'master'), role(b, 'master')]);
    const [master, slave] = first.master === a.election.address ? [a, b] : [b, a];
    await waitFor(slave.election.state$, (s) => s.term === first.term, 'the slave to follow');
    const labels = { election_name: 'sample-test', election_backend: 'doozer' };
    const isMaster = (s: Sample[]): number => value(s, 'master_election_is_master', labels);
    const token = (s: Sample[]): number => value(s, 'master_election_fencing_token', labels);
    const gaps = (s: Sample[]): number =>
      value(s, 'master_election_no_master_duration_count', labels);
    const selfTerms = (s: Sample[]): number =>
      value(s, 'master_election_terms_started_total', { ...labels, election_term_holder: 'self' });
    // From instrumentStore (sample/src/store.ts): one sample per renewal of the lease.
    const renewals = (s: Sample[]): number =>
      value(s, 'master_election_renewal_duration_count', {
        ...labels,
        election_renewal_outcome: 'renewed',
      });
    const renewalSeconds = (s: Sample[]): number =>
      value(s, 'master_election_renewal_duration_sum', labels);

    const before = await slave.metrics();
    expect(isMaster(await master.metrics())).toBe(1);
    expect(isMaster(before)).toBe(0);
    expect(token(before)).toBe(first.term);
    expect(selfTerms(before)).toBe(0);
    // The master renews every ELECTION_RETRY_PERIOD_MS; the slave never renews.
    const renewed = await vi.waitFor(
      async () => {
        const samples = await master.metrics();
        expect(renewals(samples)).toBeGreaterThan(0);
        return samples;
      },
      { timeout: 20_000, interval: 100 },
    );
    expect(renewalSeconds(renewed)).toBeGreaterThan(0);
    expect(renewals(before)).toBe(0);

    // The master shuts down and resigns: the slave's metrics show it master of a new term.
    await master.close();
    const next = await role(slave, 'master');
    const after = await slave.metrics();
    expect(isMaster(after)).toBe(1);
    expect(token(after)).toBe(next.term);
    expect(token(after)).toBeGreaterThan(token(before));
    expect(selfTerms(after)).toBe(1);
    expect(gaps(after)).toBe(gaps(before) + 1);
  });
});

describe('sample configuration', () => {
  it('applies defaults and converts numbers', () => {
    expect(validateEnv({ DOOZER_URI: 'doozer:?ca=127.0.0.1:8046' })).toEqual({
      DOOZER_URI: 'doozer:?ca=127.0.0.1:8046',
      DOOZER_BOOT_URI: undefined,
      PORT: 3000,
      ELECTION_NAME: 'sample-jobs',
      ELECTION_LEASE_MS: undefined,
      ELECTION_RENEW_DEADLINE_MS: undefined,
      ELECTION_RETRY_PERIOD_MS: undefined,
      LOG_FORMAT: 'text',
      LOG_LEVEL: 'log',
    });
    expect(
      validateEnv({
        DOOZER_URI: 'doozer:?cn=prod',
        DOOZER_BOOT_URI: 'doozer:?ca=10.0.0.1:8046',
        PORT: '0',
        ELECTION_LEASE_MS: '2000',
        LOG_FORMAT: 'json',
      }),
    ).toMatchObject({
      DOOZER_BOOT_URI: 'doozer:?ca=10.0.0.1:8046',
      PORT: 0,
      ELECTION_LEASE_MS: 2000,
      LOG_FORMAT: 'json',
    });
  });

  it('names the variable that is missing or wrong', () => {
    expect(() => validateEnv({})).toThrow(/^DOOZER_URI is required/);
    expect(() => validateEnv({ DOOZER_URI: 'doozer:?ca=h:1', PORT: '70000' })).toThrow(
      new SampleConfigError('PORT must be an integer from 0 to 65535 (got "70000")'),
    );
    expect(() => validateEnv({ DOOZER_URI: 'doozer:?ca=h:1', ELECTION_LEASE_MS: '2s' })).toThrow(
      /^ELECTION_LEASE_MS must be an integer/,
    );
    expect(() => validateEnv({ DOOZER_URI: 'doozer:?ca=h:1', LOG_FORMAT: 'xml' })).toThrow(
      /^LOG_FORMAT must be one of text, json/,
    );
  });

  it('ELECTION_URI picks the store by its scheme and wins over DOOZER_URI', () => {
    const target = (env: Record<string, string>) => storeTarget(validateEnv(env));
    const doozer = 'doozer:?ca=127.0.0.1:8046';
    expect(target({ DOOZER_URI: doozer, DOOZER_BOOT_URI: 'doozer:?ca=h:1' })).toEqual({
      backend: 'doozer',
      uri: doozer,
      bootUri: 'doozer:?ca=h:1',
    });
    expect(target({ ELECTION_URI: 'etcd://127.0.0.1:2379/apps', DOOZER_URI: doozer })).toEqual({
      backend: 'etcd',
      uri: 'etcd://127.0.0.1:2379/apps',
      bootUri: undefined,
    });
    for (const uri of ['postgres://u:pw@127.0.0.1:5432/db', 'postgresql://u:pw@h/db']) {
      expect(target({ ELECTION_URI: uri })).toMatchObject({ backend: 'postgres', uri });
    }
    // A scheme it does not know: named, the URI (and its password) not repeated.
    let message = '';
    try {
      validateEnv({ ELECTION_URI: 'mysql://u:s3cret@h/db' });
    } catch (err) {
      expect(err).toBeInstanceOf(SampleConfigError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/^ELECTION_URI must start with doozer:, etcd:\/\/ or postgres:\/\//);
    expect(message).not.toContain('s3cret');
  });
});

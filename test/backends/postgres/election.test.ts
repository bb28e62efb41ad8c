/**
 * The election engine on PostgreSQL, end to end: three participants (each
 * with its own store, as separate processes would have) on a real server,
 * each through its own loopback proxy so a test can cut one off. Real time:
 * every wait is on an event, with generous timeouts; terms are checked for
 * overlap on the process's monotonic clock.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createPostgresStore,
  type PostgresElectionStore,
} from '../../../lib/backends/postgres/index.js';
import { systemClock } from '../../../lib/election/clock.js';
import {
  MasterElection,
  type MasterStepDownError,
  type MasterTerm,
} from '../../../lib/election/index.js';
import { startPostgres, type PostgresServer } from '../../support/postgres.js';
import { TcpProxy } from '../../support/tcp-proxy.js';
import { waitFor } from '../../support/wait.js';

const TIMING = { leaseMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };
const silent = { log: () => {}, warn: () => {}, error: () => {} };

interface Span {
  readonly who: string;
  readonly token: number;
  readonly start: number;
  end: number | null;
  reason: string;
}

interface Participant {
  readonly address: string;
  readonly app: string;
  readonly proxy: TcpProxy;
  readonly store: PostgresElectionStore;
  readonly election: MasterElection;
}

let server: PostgresServer;
let members: Participant[] = [];
const spans: Span[] = [];
let seq = 0;

beforeAll(async () => {
  server = await startPostgres();
}, 180_000);

afterEach(async () => {
  for (const m of members) m.proxy.unblock();
  await Promise.all(members.map((m) => m.election.close().catch(() => {})));
  for (const m of members) {
    await m.store.close();
    await m.proxy.close();
  }
  members = [];
  spans.length = 0;
});

afterAll(async () => {
  await server?.stop();
});

async function join(name: string, i: number): Promise<Participant> {
  const proxy = await TcpProxy.start(server.port);
  const port = Number(/:(\d+)$/.exec(proxy.uri)![1]);
  const app = `p${++seq}`;
  const url = `postgres://${server.user}:${server.password}@127.0.0.1:${port}/postgres`;
  const store = await createPostgresStore({ connectionString: url, applicationName: app });
  const address = `127.0.0.1:${9000 + i}`;
  const election = await MasterElection.open(store, {
    ...TIMING,
    name,
    address,
    logger: silent,
    receiver: {
      becomeMaster: (term: MasterTerm) => {
        const span: Span = {
          who: address,
          token: term.fencingToken,
          start: systemClock.now(),
          end: null,
          reason: '',
        };
        spans.push(span);
        term.signal.addEventListener('abort', () => {
          span.end = systemClock.now();
          span.reason = (term.signal.reason as MasterStepDownError).reason;
        });
      },
      becomeSlave: () => {},
      electionError: () => {},
    },
  });
  const m = { address, app, proxy, store, election };
  members.push(m);
  await election.start();
  return m;
}

const masters = (): Participant[] => members.filter((m) => m.election.isMaster());

/** No two terms overlap on the monotonic clock, and tokens grow with each term. */
function checkSpans(): void {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const next = sorted[i]!;
    expect(prev.end, `${prev.who} still master when ${next.who} became master`).not.toBeNull();
    expect(prev.end!).toBeLessThanOrEqual(next.start);
    expect(next.token).toBeGreaterThan(prev.token);
  }
}

async function threeWithOneMaster(name: string): Promise<Participant> {
  await Promise.all([0, 1, 2].map((i) => join(name, i)));
  await waitFor(() => masters().length === 1, 'one master', { timeoutMs: 30_000 });
  const master = masters()[0]!;
  await waitFor(
    () => members.every((m) => m.election.getCurrentMaster() === master.address),
    'everyone to know the master',
    { timeoutMs: 30_000 },
  );
  return master;
}

describe('election engine on PostgreSQL', () => {
  it('three participants elect exactly one master, whom all follow and the table names', async () => {
    const name = 'e2e-elect';
    const master = await threeWithOneMaster(name);
    const row = await server.query<{ holder: string; token: string; state: string }>(
      'SELECT holder, token::text AS token, state FROM public.master_elections WHERE name = $1',
      [name],
    );
    expect(row.rows[0]).toEqual({
      holder: master.address,
      token: String(master.election.fencingToken),
      state: 'held',
    });
    // It keeps renewing: the row's version moves on while the master stays the same.
    const v0 = await server.query<{ v: string }>(
      'SELECT version::text AS v FROM public.master_elections WHERE name = $1',
      [name],
    );
    const writes = master.store.stats.writes;
    await waitFor(() => master.store.stats.writes >= writes + 2, 'two renewals', {
      timeoutMs: 30_000,
    });
    const v1 = await server.query<{ v: string }>(
      'SELECT version::text AS v FROM public.master_elections WHERE name = $1',
      [name],
    );
    expect(BigInt(v1.rows[0]!.v)).toBeGreaterThan(BigInt(v0.rows[0]!.v));
    expect(masters()).toEqual([master]);
    checkSpans();
  });

  it("fails over when the master's connections are terminated and it cannot reconnect: it steps down on its own clock before another takes over", async () => {
    const master = await threeWithOneMaster('e2e-failover');
    const first = master.election.fencingToken;
    master.proxy.block(); // refuses its reconnections
    await server.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1',
      [`${master.app}%`],
    );
    await waitFor(() => masters().length === 1 && masters()[0] !== master, 'another master', {
      timeoutMs: 40_000,
    });
    const next = masters()[0]!;
    expect(next.election.fencingToken).toBeGreaterThan(first);
    expect(master.election.isMaster()).toBe(false);
    const old = spans.find((s) => s.token === first)!;
    expect(old.reason).toBe('renew-deadline');
    checkSpans();
    // Back on the network, the old master follows the new one.
    master.proxy.unblock();
    await waitFor(
      () => master.election.getCurrentMaster() === next.address,
      'the old master to follow',
      {
        timeoutMs: 40_000,
      },
    );
    expect(masters()).toEqual([next]);
  });

  it('a master that resigns hands over to one of the others at once (released, heard by NOTIFY)', async () => {
    const master = await threeWithOneMaster('e2e-resign');
    const first = master.election.fencingToken;
    await master.election.resign();
    expect(master.election.isMaster()).toBe(false);
    await waitFor(() => masters().length === 1, 'a new master', { timeoutMs: 30_000 });
    const next = masters()[0]!;
    expect(next.election.fencingToken).toBeGreaterThan(first);
    const old = spans.find((s) => s.token === first)!;
    expect(old.reason).toBe('resigned');
    checkSpans();
    await waitFor(
      () => members.every((m) => m.election.getCurrentMaster() === next.address),
      'everyone to follow the new master',
      { timeoutMs: 30_000 },
    );
  });
});

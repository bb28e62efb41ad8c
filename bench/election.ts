/**
 * Election benchmark: prints one JSON line of figures.
 *
 *   npm run bench:election            # full run
 *   node dist/bench/election.js --quick
 *
 * - handover: resign() -> the other participant's becomeMaster, p50/p99
 * - failover: kill -9 of the master (participants in child processes,
 *   leaseMs 1000) -> another's becomeMaster, p50/p99/max
 * - first master: time from start to the first becomeMaster with 1, 10 and
 *   100 participants, on a store where the election exists (its lease was
 *   released) and on an empty store (where the missing lease is waited out)
 * - steady state: server requests per second (and per renewal) with 10, 50 and 100
 *   participants, and the writes one master change costs with 100
 *
 * Everything runs against the embedded server on 127.0.0.1 (port 0).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DoozerClient } from '../lib/doozer/index.js';
import { systemClock, type MasterElectionOptions, type MasterTerm } from '../lib/election/index.js';
import { MasterElectionClient } from '../lib/backends/doozer/index.js';
import { DoozerServer } from '../lib/testing/index.js';

const quick = process.argv.includes('--quick');
const now = (): number => systemClock.now();
const round = (x: number): number => Math.round(x * 100) / 100;

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return round(
    sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN,
  );
}

function summary(samples: number[]): { n: number; p50: number; p99: number; max: number } {
  return {
    n: samples.length,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    max: round(Math.max(...samples)),
  };
}

/** An in-process participant with its own connection, as a separate replica would have. */
class Participant {
  terms = 0;
  private masterWaiters: ((t: number) => void)[] = [];
  election!: MasterElectionClient;
  private client!: DoozerClient;

  static async start(
    uri: string,
    name: string,
    address: string,
    options: MasterElectionOptions,
  ): Promise<Participant> {
    const p = new Participant();
    p.client = await DoozerClient.connect(uri);
    p.election = await MasterElectionClient.create(
      p.client,
      name,
      address,
      true,
      {
        becomeMaster: (_term: MasterTerm) => {
          p.terms++;
          const t = now();
          for (const w of p.masterWaiters.splice(0)) w(t);
        },
        becomeSlave: () => {},
      },
      options,
    );
    return p;
  }

  /** Resolves with the time of this participant's next becomeMaster. */
  nextMaster(): Promise<number> {
    return new Promise((resolve) => this.masterWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    await this.election.close();
    await this.client.close();
  }
}

async function firstMaster(
  server: DoozerServer,
  name: string,
  count: number,
  options: MasterElectionOptions,
): Promise<{ ms: number; participants: Participant[] }> {
  const start = now();
  let electedAt!: (t: number) => void;
  const elected = new Promise<number>((resolve) => (electedAt = resolve));
  const participants = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const p = await Participant.start(server.uri, name, `127.0.0.1:${10_000 + i}`, options);
      void p.nextMaster().then(electedAt);
      return p;
    }),
  );
  const t = await elected;
  return { ms: round(t - start), participants };
}

async function stopAll(ps: Participant[]): Promise<void> {
  await Promise.all(ps.map((p) => p.stop()));
}

/** Handover: the master resigns, the other takes over; repeated. */
async function handover(rounds: number): Promise<ReturnType<typeof summary>> {
  const server = await DoozerServer.start({ heartbeatMs: 0 });
  const options = { leaseMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };
  const { participants } = await firstMaster(server, 'handover', 2, options);
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const master = participants.find((p) => p.election.isMaster())!;
    const other = participants.find((p) => p !== master)!;
    const next = other.nextMaster();
    const t0 = now();
    await master.election.resign();
    samples.push((await next) - t0);
  }
  await stopAll(participants);
  await server.close();
  return summary(samples);
}

/** Crash failover: participants in child processes; kill -9 the master, time the next becomeMaster. */
async function failover(rounds: number): Promise<Record<string, unknown>> {
  const timing = { leaseMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 200 };
  const server = await DoozerServer.start({ heartbeatMs: 0 });
  const script = fileURLToPath(new URL('../test/fixtures/participant.js', import.meta.url));
  const children = new Map<string, ChildProcess>();
  const masters: { address: string; t: number }[] = [];
  let onMaster: (() => void) | null = null;
  let seq = 0;
  const startOne = async (): Promise<void> => {
    const address = `127.0.0.1:${20_000 + seq++}`;
    const child = spawn(
      process.execPath,
      [script, server.uri, 'failover', address, ...Object.values(timing).map(String)],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    children.set(address, child);
    const lines = createInterface({ input: child.stdout });
    const ready = new Promise<void>((resolve) => {
      lines.on('line', (line) => {
        const ev = JSON.parse(line) as { ev: string; t: number };
        if (ev.ev === 'ready') resolve();
        if (ev.ev === 'master') {
          masters.push({ address, t: ev.t });
          onMaster?.();
        }
      });
    });
    await ready;
  };
  const nextMaster = (after: number): Promise<{ address: string; t: number }> =>
    new Promise((resolve) => {
      const check = (): void => {
        const m = masters.find((x) => x.t > after);
        if (m) {
          onMaster = null;
          resolve(m);
        }
      };
      onMaster = check;
      check();
    });
  await Promise.all([startOne(), startOne(), startOne()]);
  let current = await nextMaster(0);
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const victim = children.get(current.address)!;
    children.delete(current.address);
    const killedAt = now();
    victim.kill('SIGKILL');
    const replacement = startOne();
    current = await nextMaster(killedAt);
    samples.push(current.t - killedAt);
    if (victim.exitCode === null && victim.signalCode === null) await once(victim, 'exit');
    await replacement;
  }
  const exits = [...children.values()]
    .filter((c) => c.exitCode === null && c.signalCode === null)
    .map((c) => once(c, 'exit'));
  for (const child of children.values()) child.kill('SIGKILL');
  await Promise.all(exits);
  await server.close();
  const s = summary(samples);
  return { ...s, ...timing, bound: timing.leaseMs + timing.retryPeriodMs + 100 };
}

/** Time to the first master, on a store where the election's lease exists (released) and on an empty one. */
async function timeToFirstMaster(counts: number[]): Promise<Record<string, unknown>> {
  const options = { leaseMs: 2000, renewDeadlineMs: 1400, retryPeriodMs: 400 };
  const existing: Record<string, number> = {};
  const empty: Record<string, number> = {};
  for (const n of counts) {
    const server = await DoozerServer.start({ heartbeatMs: 0 });
    // Empty store: nobody can prove a master is not still acting, so one lease is waited out.
    const fresh = await firstMaster(server, `first-${n}`, n, options);
    empty[n] = fresh.ms;
    await stopAll(fresh.participants); // resigns: the lease is now released
    const again = await firstMaster(server, `first-${n}`, n, options);
    existing[n] = again.ms;
    await stopAll(again.participants);
    await server.close();
  }
  return { ...options, existingElectionMs: existing, emptyStoreMs: empty };
}

/** Server load in steady state, and the writes one master change costs. */
async function steadyState(counts: number[], windowMs: number): Promise<Record<string, unknown>> {
  const options = { leaseMs: 10_000, renewDeadlineMs: 7_000, retryPeriodMs: 2_000 };
  const requestsPerSec: Record<string, number> = {};
  // Writes in the window are renewals (heartbeats are off); the window holds
  // 4 or 5 of them depending on phase, so requests per renewal is the figure
  // that compares across runs.
  const renewalsInWindow: Record<string, number> = {};
  const requestsPerRenewal: Record<string, number> = {};
  const handovers = 5;
  const writesPerHandover: number[] = [];
  const requestsPerHandover: number[] = [];
  for (const n of counts) {
    const server = await DoozerServer.start({ heartbeatMs: 0 });
    // Seed a released lease so the first election does not wait out a missing one.
    const seed = await firstMaster(server, 'steady', 1, {
      ...options,
      leaseMs: 1000,
      renewDeadlineMs: 700,
      retryPeriodMs: 200,
    });
    await stopAll(seed.participants);
    const { participants } = await firstMaster(server, 'steady', n, options);
    await Promise.all(participants.map((p) => p.election.whenIdle()));
    const s0 = server.stats();
    const t0 = now();
    await new Promise((r) => setTimeout(r, windowMs));
    const s1 = server.stats();
    requestsPerSec[n] = round(((s1.requests - s0.requests) * 1000) / (now() - t0));
    renewalsInWindow[n] = s1.rev - s0.rev;
    requestsPerRenewal[n] = round((s1.requests - s0.requests) / Math.max(1, s1.rev - s0.rev));
    if (n === Math.max(...counts)) {
      // Several master changes in a row: the jitter window adapts to the crowd.
      for (let i = 0; i < handovers; i++) {
        const master = participants.find((p) => p.election.isMaster())!;
        const others = participants.filter((p) => p !== master);
        const before = server.stats();
        const next = Promise.race(others.map((p) => p.nextMaster()));
        await master.election.resign();
        await next;
        await Promise.all(participants.map((p) => p.election.whenIdle()));
        const after = server.stats();
        writesPerHandover.push(after.rev - before.rev);
        requestsPerHandover.push(after.requests - before.requests);
      }
    }
    await stopAll(participants);
    await server.close();
  }
  return {
    retryPeriodMs: options.retryPeriodMs,
    windowMs,
    requestsPerSec,
    renewalsInWindow,
    requestsPerRenewal,
    participantsForHandover: Math.max(...counts),
    // 4 writes are the minimum: release, delete, create, take the lease.
    writesPerHandover,
    requestsPerHandover,
  };
}

const figures = {
  bench: 'election',
  node: process.version,
  quick,
  handoverMs: await handover(quick ? 50 : 250),
  failoverMs: await failover(quick ? 5 : 25),
  firstMaster: await timeToFirstMaster(quick ? [1, 10] : [1, 10, 100]),
  steadyState: await steadyState(quick ? [10, 50] : [10, 50, 100], quick ? 4000 : 10_000),
};
process.stdout.write(`${JSON.stringify(figures)}\n`);

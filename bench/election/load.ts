/** First master with 1/10/100 participants; steady-state load; writes per master change. */
import type { BenchBackend, BenchServer } from './servers.js';
import { allFollow, masterOf, startFleet, stopFleet, type Fleet } from './participants.js';
import { now, round, sleep, summary } from './stats.js';

/** Time to the first master, on a store where the election existed (released) and on an empty one. */
export async function timeToFirstMaster(
  backend: BenchBackend,
  counts: number[],
): Promise<Record<string, unknown>> {
  const options = { leaseMs: 2000, renewDeadlineMs: 1400, retryPeriodMs: 400 };
  const existing: Record<string, number> = {};
  const empty: Record<string, number> = {};
  for (const n of counts) {
    const server = await backend.server();
    // Empty store: on Doozer nobody can prove a master is not still acting, so one lease is waited out.
    const fresh = await startFleet(backend, server, `first-${n}`, n, options);
    empty[n] = fresh.firstMasterMs;
    await stopFleet(fresh, server); // resigns: the lease is now released
    const again = await startFleet(backend, server, `first-${n}`, n, options);
    existing[n] = again.firstMasterMs;
    await stopFleet(again, server);
    await server.close();
  }
  return {
    ...options,
    emptyStoreIs: backend.emptyStoreIs,
    existingElectionMs: existing,
    emptyStoreMs: empty,
  };
}

const serverLoad = async (server: BenchServer, fleet: Fleet): Promise<number> =>
  (await server.requests()) ?? fleet.participants.reduce((s, p) => s + p.queries(), 0);

/**
 * Server load in steady state with 10, 50 and 100 participants; with the
 * largest, `changes` master changes in a row (the master resigns), each
 * costing the writes counted at the port from the resign until every
 * participant follows the new master and is idle.
 */
export async function steadyState(
  backend: BenchBackend,
  counts: number[],
  windowMs: number,
  changes: number,
): Promise<Record<string, unknown>> {
  const options = { leaseMs: 10_000, renewDeadlineMs: 7_000, retryPeriodMs: 2_000 };
  const requestsPerSec: Record<string, number> = {};
  const portOpsPerSec: Record<string, number> = {};
  const renewalsInWindow: Record<string, number> = {};
  const requestsPerRenewal: Record<string, number> = {};
  const portWrites: number[] = [];
  const serverRevs: number[] = [];
  const requestsPerChange: number[] = [];
  const changeMs: number[] = [];
  const largest = Math.max(...counts);
  for (const n of counts) {
    const server = await backend.server();
    // Seed a released lease so the first election does not wait out a missing one (Doozer).
    const seed = await startFleet(backend, server, `steady-${n}`, 1, {
      leaseMs: 1000,
      renewDeadlineMs: 700,
      retryPeriodMs: 200,
    });
    await stopFleet(seed, server);
    const fleet = await startFleet(backend, server, `steady-${n}`, n, options);
    try {
      await Promise.all(fleet.participants.map((p) => p.election.whenIdle()));
      const r0 = await serverLoad(server, fleet);
      const rev0 = server.rev?.() ?? 0;
      const ops0 = fleet.counts.operations;
      const renews0 = fleet.counts.renews;
      const t0 = now();
      await sleep(windowMs);
      const r1 = await serverLoad(server, fleet);
      const elapsed = now() - t0;
      // Writes in the window are renewals; the window holds 4 or 5 of them depending on phase,
      // so requests per renewal is the figure that compares across runs.
      const renewals = server.rev ? server.rev() - rev0 : fleet.counts.renews - renews0;
      requestsPerSec[n] = round(((r1 - r0) * 1000) / elapsed);
      portOpsPerSec[n] = round(((fleet.counts.operations - ops0) * 1000) / elapsed);
      renewalsInWindow[n] = renewals;
      requestsPerRenewal[n] = round((r1 - r0) / Math.max(1, renewals));
      if (n === largest) {
        for (let i = 0; i < changes; i++) {
          const master = masterOf(fleet);
          if (!master) throw new Error(`${backend.name}: change ${i}: no master`);
          const others = fleet.participants.filter((p) => p !== master);
          const w0 = fleet.counts.writes;
          const rev = server.rev?.() ?? 0;
          const req = await serverLoad(server, fleet);
          const next = Promise.race(others.map((p) => p.nextMaster()));
          const c0 = now();
          await master.election.resign();
          await next;
          changeMs.push(now() - c0);
          const successor = masterOf(fleet);
          if (!successor)
            throw new Error(`${backend.name}: change ${i}: becomeMaster but no master`);
          await allFollow(
            fleet,
            successor,
            `${backend.name}: change ${i}: all follow the new master`,
          );
          portWrites.push(fleet.counts.writes - w0);
          if (server.rev) serverRevs.push(server.rev() - rev);
          requestsPerChange.push((await serverLoad(server, fleet)) - req);
        }
      }
    } finally {
      await stopFleet(fleet, server);
      await server.close();
    }
  }
  return {
    retryPeriodMs: options.retryPeriodMs,
    windowMs,
    requestsAre: backend.requestsAre,
    requestsPerSec,
    portOpsPerSec,
    renewalsInWindow,
    requestsPerRenewal,
    participantsForHandover: largest,
    // Doozer's figures of old: the store's revisions (writes) and requests of the first 5 changes.
    ...(backend.name === 'doozer'
      ? {
          writesPerHandover: serverRevs.slice(0, 5),
          requestsPerHandover: requestsPerChange.slice(0, 5),
        }
      : {}),
    // Issue 14: store mutations (create, renew, release, depose at the port) per master change, from the first.
    writesPerChange: {
      participants: largest,
      ...(portWrites.length ? summary(portWrites) : { n: 0 }),
      samples: portWrites,
      ...(serverRevs.length > 0 ? { doozerRevs: summary(serverRevs) } : {}),
    },
    changeMs: changeMs.length ? summary(changeMs) : { n: 0 },
    requestsPerChange,
  };
}

/** Graceful handover: the master resigns, another participant's becomeMaster; repeated. */
import type { BenchBackend } from './servers.js';
import { allFollow, masterOf, startFleet, stopFleet } from './participants.js';
import { now, round, summary, type Summary } from './stats.js';

const TIMING = { leaseMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };

/**
 * `count` participants; each round the master resigns and the time to the
 * next becomeMaster (any other participant's) is taken. Before the next
 * round every participant has seen the new master (not timed).
 */
export async function handover(
  backend: BenchBackend,
  count: number,
  rounds: number,
): Promise<Summary & { participants: number; port: { writesPerRound: number } }> {
  const server = await backend.server();
  const fleet = await startFleet(backend, server, `handover-${count}`, count, TIMING);
  const samples: number[] = [];
  const w0 = fleet.counts.writes;
  let writes: number;
  try {
    let master = masterOf(fleet);
    for (let i = 0; i < rounds; i++) {
      if (!master) throw new Error(`${backend.name}: handover round ${i}: no master`);
      const others = fleet.participants.filter((p) => p !== master);
      const next = Promise.race(others.map((p) => p.nextMaster()));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `${backend.name}: handover round ${i} of ${count}: no new master within 30 s of resign()`,
              ),
            ),
          30_000,
        );
      });
      const t0 = now();
      await master.election.resign();
      try {
        samples.push((await Promise.race([next, timeout])) - t0);
      } finally {
        clearTimeout(timer);
      }
      master = masterOf(fleet);
      if (!master)
        throw new Error(`${backend.name}: handover round ${i}: becomeMaster but no master`);
      await allFollow(
        fleet,
        master,
        `${backend.name}: handover round ${i}: all follow the new master`,
      );
    }
    writes = fleet.counts.writes - w0;
  } finally {
    await stopFleet(fleet, server);
    await server.close();
  }
  return {
    participants: count,
    ...summary(samples),
    port: { writesPerRound: round(writes / Math.max(1, rounds)) },
  };
}

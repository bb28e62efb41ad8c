/** What the demo checks and prints after each change of master, across its replicas. */
import type { ElectionStatus } from '../src/election.controller.js';
import { LEADER_JOB_INTERVAL_MS } from '../src/leader-job.service.js';
import { cyan, dim, say } from './console.js';
import type { Replica } from './replica.js';
import { DemoError, pollFor, waitFor } from './wait.js';

/** How long to wait, and what aborts the wait. */
export interface Patience {
  readonly patienceMs: number;
  readonly signal: AbortSignal;
}

/**
 * Polls `GET /election` of every live replica until they all agree on the
 * master and its term (each replica learns of a change on its own watch, a
 * moment apart), then prints their answers.
 */
export async function showAgreement(
  replicas: readonly Replica[],
  master: Replica,
  term: number,
  { patienceMs, signal }: Patience,
): Promise<void> {
  const live = replicas.filter((r) => r.running && !r.stopping);
  let last: (ElectionStatus | undefined)[] = [];
  const agreed = await pollFor(
    async () => {
      last = await Promise.all(live.map((r) => r.status()));
      const ok = last.every(
        (s, i) =>
          s !== undefined &&
          s.term === term &&
          s.master === master.address &&
          s.role === (live[i] === master ? 'master' : 'slave'),
      );
      return ok ? last : undefined;
    },
    () =>
      `every replica to name ${master.label} master of term ${term} on GET /election (last answers: ${JSON.stringify(last)})`,
    patienceMs,
    signal,
  );
  const answers = live.map(
    (r, i) => `${r.label}: ${agreed[i]?.role === 'master' ? cyan('master') : 'slave'}`,
  );
  say(
    `   GET /election  ${answers.join('   ')}   ${dim(`(all: master ${master.address}, term ${term})`)}`,
  );
}

/** Waits for the first run of the leader-only job on `replica` in term `term`, and says so. */
export async function showJobRun(
  replicas: readonly Replica[],
  replica: Replica,
  term: number,
  explain: boolean,
  { patienceMs, signal }: Patience,
): Promise<void> {
  const index = (): number => replica.jobRuns.indexOf(term);
  if (index() < 0) {
    await waitFor(
      replica.logs$,
      () => index() >= 0,
      `the leader-only job to run on ${replica.label}`,
      LEADER_JOB_INTERVAL_MS + patienceMs,
      signal,
    );
  }
  const run = `run #${index() + 1}, fencing token ${term}`;
  if (explain) {
    const others = replicas.filter((r) => r !== replica).map((r) => r.label);
    say(
      `   leader-only job runs on ${replica.label} (${run}); ${dim(`@Interval(${LEADER_JOB_INTERVAL_MS}) + @MasterOnly: ${others.join(' and ')} skip it`)}`,
    );
  } else {
    say(`   leader-only job moved to ${replica.label} (${run})`);
  }
}

/** Every run of the leader-only job carried the fencing token of a term of its own replica. */
export function checkJobRuns(
  replicas: readonly Replica[],
  terms: ReadonlyMap<number, string>,
): void {
  for (const r of replicas) {
    for (const token of r.jobRuns) {
      if (terms.get(token) !== r.address) {
        throw new DemoError(
          `replica ${r.label} ran the leader-only job with fencing token ${token}, a term of ${terms.get(token) ?? 'no master the observer saw'}`,
        );
      }
    }
  }
}

/**
 * The engine options a registration passes through: `clock` (the engine's
 * leases and timers on a ManualClock) and `beforeRelease` (run when a term
 * ends, after the running `@MasterOnly` calls drained, before the release).
 */
import { Test, type TestingModule } from '@nestjs/testing';
import { afterEach, expect, it } from 'vitest';
import { MasterElectionModule, MasterElectionService } from 'nestjs-master-election';
import { ManualClock, MemoryElectionStore } from 'nestjs-master-election/testing';
import { ElectionConfigError } from '../../lib/election/index.js';

const LEASE_MS = 60_000;

let moduleRef: TestingModule | undefined;
afterEach(async () => {
  await moduleRef?.close();
  moduleRef = undefined;
});

async function app(options: Record<string, unknown>): Promise<MasterElectionService> {
  moduleRef = await Test.createTestingModule({
    imports: [
      MasterElectionModule.forRoot({
        name: 'jobs',
        address: 'app:1',
        logLevel: 'silent',
        leaseMs: LEASE_MS,
        renewDeadlineMs: 40_000,
        retryPeriodMs: 10_000,
        ...options,
      }),
    ],
  }).compile();
  await moduleRef.init();
  return moduleRef.get(MasterElectionService);
}

it('clock: the first election waits out the missing lease on the given clock, not in real time', async () => {
  const clock = new ManualClock();
  const store = new MemoryElectionStore({ clock });
  const released: number[] = [];
  const election = await app({
    store,
    clock,
    electionJitterMs: 0,
    beforeRelease: (term: { fencingToken: number }) => {
      released.push(term.fencingToken);
    },
  });
  // The engine waits one full lease (60 s) on its clock before it runs; the
  // test's clock jumps there, so mastership comes in real milliseconds.
  const waiting = election.waitForMastership({ timeoutMs: 20_000 });
  for (let i = 0; i < 50 && !election.isMaster(); i++) {
    clock.advance(LEASE_MS / 10);
    await new Promise((r) => setImmediate(r));
  }
  const term = await waiting;
  expect(election.isMaster()).toBe(true);

  // beforeRelease: called with the term as it ends, before the lease is released.
  await election.resign();
  expect(released).toEqual([term.fencingToken]);
  expect(term.signal.aborted).toBe(true);
});

it('beforeRelease that is not a function is a config error naming it', async () => {
  const store = new MemoryElectionStore({ clock: new ManualClock() });
  await expect(app({ store, beforeRelease: 'later' })).rejects.toSatisfy(
    (e: unknown) => e instanceof ElectionConfigError && e.option === 'beforeRelease',
  );
});

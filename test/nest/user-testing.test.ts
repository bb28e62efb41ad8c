/**
 * A user's unit test of leader-only code, written as in docs/nest-module.md
 * ("Testing your leader-only code"): only the package's public entries,
 * the in-memory lock of `nestjs-master-election/testing`, and a rival
 * participant that the test drives by hand, so this app is a follower, then
 * the master, then a follower again. No server, no sleeps: every step waits
 * for the state it caused.
 */
import { Injectable } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { afterEach, expect, it } from 'vitest';
import {
  MasterElectionModule,
  MasterElectionService,
  MasterOnly,
  OnBecomeMaster,
  type MasterTerm,
} from 'nestjs-master-election';
import { MasterElection } from 'nestjs-master-election/election';
import { ManualClock, MemoryElectionStore } from 'nestjs-master-election/testing';
import { firstValueFrom, filter } from 'rxjs';

// --- the user's code under test ---------------------------------------------

@Injectable()
class ReportSender {
  readonly sent: string[] = [];
  readonly terms: number[] = [];

  @MasterOnly()
  send(report: string): void {
    this.sent.push(report);
  }

  @OnBecomeMaster()
  onMaster(term: MasterTerm): void {
    this.terms.push(term.fencingToken);
  }
}

// --- the user's test --------------------------------------------------------

/** Resolves once `service` reports `role`. */
const role = (service: MasterElectionService, r: 'master' | 'slave'): Promise<unknown> =>
  firstValueFrom(service.state$.pipe(filter((s) => s.role === r)));

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Another replica of the app, started and stopped by the test. */
async function rival(store: MemoryElectionStore, address: string): Promise<MasterElection> {
  const election = await MasterElection.open(store, {
    name: 'reports',
    address,
    electionJitterMs: 0, // campaigns at once
  });
  cleanups.push(() => election.close());
  await election.start();
  await firstValueFrom(election.state$.pipe(filter((s) => s.role !== 'candidate')));
  return election;
}

it('runs @MasterOnly code only while the app is master, as the test decides', async () => {
  const clock = new ManualClock();
  // Like etcd, the store ends a term whose holder stopped renewing: on the
  // test's clock, so only when the test advances it.
  const store = new MemoryElectionStore({ expiry: 'store', clock });

  // Another replica is master when the app starts.
  const other = await rival(store, 'other:1');
  expect(other.isMaster()).toBe(true);

  const moduleRef: TestingModule = await Test.createTestingModule({
    imports: [
      MasterElectionModule.forRoot({
        name: 'reports',
        address: 'app:1',
        store,
        logLevel: 'silent',
      }),
    ],
    providers: [ReportSender],
  }).compile();
  cleanups.push(() => moduleRef.close());
  await moduleRef.init();
  const election = moduleRef.get(MasterElectionService);
  const sender = moduleRef.get(ReportSender);

  await role(election, 'slave');
  expect(election.state).toMatchObject({ role: 'slave', master: 'other:1' });
  sender.send('monday');
  expect(sender.sent).toEqual([]); // skipped: not the master

  // The other replica freezes (cut off from the lock), and its lease runs out: the app takes over.
  store.partition(other.id);
  clock.advance(10_000); // the default leaseMs
  const term = await election.waitForMastership({ timeoutMs: 20_000 });
  sender.send('tuesday');
  expect(sender.sent).toEqual(['tuesday']);
  expect(sender.terms).toEqual([term.fencingToken]);
  store.heal(other.id); // the frozen replica comes back, finds it lost, and is stopped
  await other.close();

  // A new replica waits; the app hands over to it.
  const next = await rival(store, 'next:1');
  await election.resign();
  await role(election, 'slave');
  expect(next.isMaster()).toBe(true);
  expect(election.state).toMatchObject({ role: 'slave', master: 'next:1' });
  sender.send('wednesday');
  expect(sender.sent).toEqual(['tuesday']);
  expect(term.signal.aborted).toBe(true);
});

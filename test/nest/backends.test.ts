/**
 * The Nest module on other backends (the `store` option): a `@MasterOnly`
 * job of two applications on a real etcd and on a real PostgreSQL runs on
 * exactly one of them, and moves to the other when the master's app closes.
 * Real time: every wait is on an event, with generous timeouts.
 */
import { Injectable } from '@nestjs/common';
import { Interval, ScheduleModule } from '@nestjs/schedule';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  MasterElectionModule,
  MasterElectionService,
  MasterOnly,
  type MasterElectionModuleOptions,
} from 'nestjs-master-election';
import { EtcdElectionStore } from 'nestjs-master-election/etcd';
import { createPostgresStore } from 'nestjs-master-election/postgres';
import { ElectionConfigError, type ElectionStore } from '../../lib/election/index.js';
import { ETCDCTL_BIN, ETCD_BIN, EtcdServer } from '../support/etcd.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { EventLog, Harness, leaderAndFollower, waitForRole, type TestApp } from './helpers.js';

const TIMING = { leaseMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 } as const;

@Injectable()
class Job {
  readonly runs = new EventLog<{ address: string; master: boolean }>();
  constructor(private readonly election: MasterElectionService) {}

  @Interval(50)
  @MasterOnly()
  tick(): void {
    this.runs.push({ address: this.election.address, master: this.election.isMaster() });
  }
}

/** A store with a `close()` (etcd's and PostgreSQL's). */
type ClosableStore = ElectionStore & { close(): Promise<void> };

/**
 * Two apps on their own stores (as two processes would have): exactly one
 * runs the job; closing it moves the job to the other. The stores are
 * closed by the test after the apps: the module never closes them.
 */
async function jobMovesOnClose(
  h: Harness,
  openStore: () => Promise<ClosableStore>,
  name: string,
): Promise<void> {
  const stores: ClosableStore[] = [];
  h.defer(async () => {
    for (const s of stores) await s.close();
  });
  const startApp = async (address: string, viaFactory: boolean): Promise<TestApp> => {
    const store = await openStore();
    stores.push(store);
    const options: MasterElectionModuleOptions = {
      name,
      address,
      ...TIMING,
      logLevel: 'silent',
      // One app gives the store itself, the other a factory (forRootAsync).
      store: viaFactory ? () => store : store,
    };
    return h.app({
      imports: [
        ScheduleModule.forRoot(),
        viaFactory
          ? MasterElectionModule.forRootAsync({ useFactory: () => options })
          : MasterElectionModule.forRoot(options),
      ],
      providers: [Job],
    });
  };
  const [a, b] = await Promise.all([startApp('a:1', false), startApp('b:2', true)]);
  const { leader, follower } = await leaderAndFollower(a, b);
  const leaderRuns = leader.app.get(Job).runs;
  const followerRuns = follower.app.get(Job).runs;
  let seen = 0;
  await leaderRuns.next(() => ++seen === 3, `3 runs of the job on ${leader.service().address}`);
  expect(followerRuns.all).toEqual([]);
  expect(leaderRuns.all.every((r) => r.master && r.address === leader.service().address)).toBe(
    true,
  );
  expect(leader.service().health()).toMatchObject({ healthy: true, connected: true });

  await leader.close();
  const leaderCount = leaderRuns.all.length;
  await waitForRole(follower.service(), 'master');
  await followerRuns.next((r) => r.master, `the job on ${follower.service().address}`);
  expect(followerRuns.all.every((r) => r.address === follower.service().address)).toBe(true);
  expect(leaderRuns.all.length).toBe(leaderCount); // the closed app runs it no more
  expect(follower.service().health()).toMatchObject({ healthy: true, role: 'master' });
}

describe.skipIf(!ETCD_BIN || !ETCDCTL_BIN)('MasterElectionModule on etcd', () => {
  let server: EtcdServer;
  const h = new Harness();
  beforeAll(async () => {
    server = await EtcdServer.start();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    await h.close();
  });

  it('runs a @MasterOnly job on one app only, and on the other once the master closes', async () => {
    await jobMovesOnClose(h, () => EtcdElectionStore.connect(server.uri()), 'nest-etcd');
  }, 60_000);

  it("onUnreachable: 'retry' calls a failing store function again until it returns a store", async () => {
    let calls = 0;
    let store: EtcdElectionStore | undefined;
    h.defer(() => store?.close());
    const app = await h.app({
      imports: [
        MasterElectionModule.forRoot({
          name: 'nest-etcd-retry',
          address: 'r:1',
          ...TIMING,
          logLevel: 'silent',
          onUnreachable: 'retry',
          store: async () => {
            if (++calls === 1) throw new Error('not yet');
            store = await EtcdElectionStore.connect(server.uri());
            return store;
          },
        }),
      ],
    });
    await waitForRole(app.service(), 'master');
    expect(calls).toBe(2);
  }, 60_000);
});

describe('MasterElectionModule on PostgreSQL', () => {
  let server: PostgresServer;
  const h = new Harness();
  beforeAll(async () => {
    server = await startPostgres();
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    await h.close();
  });

  it('runs a @MasterOnly job on one app only, and on the other once the master closes', async () => {
    await jobMovesOnClose(
      h,
      () => createPostgresStore({ connectionString: server.url }),
      'nest-postgres',
    );
  }, 60_000);
});

describe('the store option', () => {
  const h = new Harness();
  afterEach(async () => {
    await h.close();
  });

  it('is exactly one of uri, client and store: a typed error names the extra one', async () => {
    const store: ElectionStore = {
      backend: 'none',
      openLock: () => Promise.reject(new Error('not used')),
      toString: () => 'none',
    };
    const boot = (options: Record<string, unknown>): Promise<TestApp> =>
      h.app({
        imports: [MasterElectionModule.forRoot({ name: 'bad', ...options })],
      });
    const both = await boot({ uri: 'doozer:?ca=127.0.0.1:1', store }).catch((e: unknown) => e);
    expect(both).toBeInstanceOf(ElectionConfigError);
    expect(both).toMatchObject({ option: 'store' });
    const notStore = await boot({ store: { openLock: 1 } }).catch((e: unknown) => e);
    expect(notStore).toBeInstanceOf(ElectionConfigError);
    expect(notStore).toMatchObject({ option: 'store' });
    const none = await boot({}).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(ElectionConfigError);
  });
});

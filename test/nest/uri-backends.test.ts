/**
 * Choosing the backend by the scheme of `uri`: `etcd://` and `postgres://`
 * registrations elect and run a `@MasterOnly` job on one of two apps;
 * registrations of one app on the same URI share one store (one LISTEN
 * connection on the PostgreSQL server), closed when the app closes; one app
 * runs elections on Doozer, etcd and PostgreSQL side by side; an unknown
 * scheme fails the boot with a typed error. One etcd and one PostgreSQL
 * server for the file. Real time: every wait is on an event.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Injectable } from '@nestjs/common';
import { Interval, ScheduleModule } from '@nestjs/schedule';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  MasterElectionModule,
  MasterElectionService,
  MasterOnly,
  type MasterElectionModuleOptions,
} from 'nestjs-master-election';
import { createPostgresStore } from 'nestjs-master-election/postgres';
import { MasterElection } from '../../lib/election/index.js';
import { ElectionConfigError } from '../../lib/election/errors.js';
import { ETCDCTL_BIN, ETCD_BIN, EtcdServer } from '../support/etcd.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { waitFor } from '../support/wait.js';
import {
  EventLog,
  Harness,
  RecordingLogger,
  leaderAndFollower,
  waitForRole,
  type TestApp,
} from './helpers.js';

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

/** Two apps (as two processes would be) on `uri`: one runs the job; closing it moves the job. */
async function jobMovesOnClose(h: Harness, uri: string, name: string): Promise<void> {
  const startApp = (address: string, async: boolean): Promise<TestApp> => {
    const options: MasterElectionModuleOptions = { name, address, uri, ...TIMING };
    return h.app({
      imports: [
        ScheduleModule.forRoot(),
        async
          ? MasterElectionModule.forRootAsync({
              useFactory: () => ({ ...options, logLevel: 'silent' }),
            })
          : MasterElectionModule.forRoot({ ...options, logLevel: 'silent' }),
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
  expect(leaderRuns.all.length).toBe(leaderCount);
}

/** Waits until the server-side `cond` holds, asking again every 50 ms, for at most 20 s. */
async function eventually(cond: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const hasEtcd = Boolean(ETCD_BIN && ETCDCTL_BIN);

describe('MasterElectionModule: the backend chosen by the scheme of uri', () => {
  let etcd: EtcdServer | undefined;
  let pg: PostgresServer;
  const h = new Harness();
  beforeAll(async () => {
    [etcd, pg] = await Promise.all([
      hasEtcd ? EtcdServer.start() : Promise.resolve(undefined),
      startPostgres(),
    ]);
  }, 180_000);
  afterAll(async () => {
    await Promise.all([etcd?.stop(), pg?.stop()]);
  });
  afterEach(async () => {
    await h.close();
  });

  /** The LISTEN connections of the module's stores now open on the server (one per store). */
  const listenConnections = async (): Promise<number> => {
    const r = await pg.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'nestjs-master-election (listen)'",
    );
    return Number(r.rows[0]?.n);
  };

  it.skipIf(!hasEtcd)(
    'etcd://: a @MasterOnly job runs on one of two apps, then moves',
    async () => {
      await jobMovesOnClose(h, etcd!.uri('/nest-uri'), 'uri-etcd');
    },
    60_000,
  );

  it('postgres://: a @MasterOnly job runs on one of two apps, then moves', async () => {
    await jobMovesOnClose(h, pg.url, 'uri-postgres');
  }, 60_000);

  it('registrations on the same postgres:// uri share one store, closed once with the app', async () => {
    await eventually(async () => (await listenConnections()) === 0, 'no LISTEN connection left');
    // A rival on its own store (its own application_name) holds both elections,
    // so the app's two registrations follow them: each watches.
    const rivalStore = await createPostgresStore({
      connectionString: pg.url,
      applicationName: 'rival',
    });
    h.defer(() => rivalStore.close());
    const rivals = await Promise.all(
      ['shared-a', 'shared-b'].map(async (name) => {
        const e = await MasterElection.open(rivalStore, { name, address: 'rival:1', ...TIMING });
        h.defer(() => e.close());
        await e.start();
        return e;
      }),
    );
    await Promise.all(rivals.map((e) => waitFor(() => e.isMaster(), `the rival to win ${e.name}`)));
    const uri = `postgresql://${pg.url.slice('postgres://'.length)}`;
    const app = await h.app({
      imports: ['shared-a', 'shared-b'].map((name, i) =>
        MasterElectionModule.forRoot({
          uri,
          name,
          address: `app:${i + 1}`,
          isDefault: i === 0,
          logLevel: 'silent',
          ...TIMING,
        }),
      ),
    });
    await Promise.all(['shared-a', 'shared-b'].map((n) => waitForRole(app.service(n), 'slave')));
    // The rival goes: both registrations take over (they were watching).
    await Promise.all(rivals.map((e) => e.close()));
    await Promise.all(['shared-a', 'shared-b'].map((n) => waitForRole(app.service(n), 'master')));
    expect(await listenConnections()).toBe(1);
    await app.close();
    await eventually(async () => (await listenConnections()) === 0, 'the store to be closed');
  }, 60_000);

  it('one app runs elections on Doozer, etcd and PostgreSQL side by side', async () => {
    await h.start();
    const uris: Record<string, string> = {
      'on-doozer': h.server.uri,
      'on-postgres': pg.url,
      ...(etcd ? { 'on-etcd': etcd.uri('/side-by-side') } : {}),
    };
    const names = Object.keys(uris);
    const logger = new RecordingLogger();
    const app = await h.app({
      imports: names.map((name, i) =>
        MasterElectionModule.forRoot({
          uri: uris[name],
          name,
          address: 'one:1',
          isDefault: i === 0,
          logger,
          logLevel: 'log',
          ...TIMING,
        }),
      ),
    });
    for (const name of names) await waitForRole(app.service(name), 'master');
    for (const name of names) {
      expect(app.service(name).health()).toMatchObject({ healthy: true, role: 'master' });
    }
    expect(
      await pg.query("SELECT name, holder FROM master_elections WHERE name = 'on-postgres'"),
    ).toMatchObject({ rows: [{ name: 'on-postgres', holder: 'one:1' }] });
    expect(logger.lines.all.map((l) => l.message).join('\n')).not.toContain(
      new URL(pg.url).password,
    );
  }, 60_000);

  it('an unknown scheme fails the boot with a typed error naming it and the choices', async () => {
    const err = await h
      .app({
        imports: [
          MasterElectionModule.forRoot({ uri: 'mysql://app:hunter2@127.0.0.1/db', name: 'x' }),
        ],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ElectionConfigError);
    expect(err).toMatchObject({ option: 'uri' });
    const message = (err as Error).message;
    expect(message).toContain('"mysql:"');
    for (const s of ['doozer:', 'etcd://', 'postgres://']) expect(message).toContain(s);
    expect(`${message} ${(err as Error).stack}`).not.toContain('hunter2');
  });

  it('a scheme whose driver is not installed fails the boot with the error naming the package', async () => {
    // A child process (the compiled CommonJS build) whose resolver cannot find etcd3 and pg.
    const script = `
      const Module = require('node:module');
      const resolve = Module._resolveFilename;
      Module._resolveFilename = function (req, ...rest) {
        if (req === 'etcd3' || req === 'pg') {
          const e = new Error("Cannot find module '" + req + "'"); e.code = 'MODULE_NOT_FOUND'; throw e;
        }
        return resolve.call(this, req, ...rest);
      };
      require('reflect-metadata');
      const { Test } = require('@nestjs/testing');
      const { MasterElectionModule } = require('./dist/cjs/index.js');
      (async () => {
        for (const uri of ${JSON.stringify([etcd?.uri() ?? 'etcd://127.0.0.1:1', `${pg.url}?sslmode=disable`])}) {
          const app = await Test.createTestingModule({
            imports: [MasterElectionModule.forRoot({ uri, name: 'nodriver', logLevel: 'silent' })],
          }).compile();
          try { await app.init(); console.log('booted'); }
          catch (e) { console.log(JSON.stringify({ name: e.name, message: e.message, stack: e.stack })); }
          finally { await app.close().catch(() => {}); }
        }
      })();`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const [etcdErr, pgErr] = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { name: string; message: string; stack: string });
    expect(etcdErr).toMatchObject({ name: 'EtcdDriverMissingError' });
    expect(etcdErr!.message).toContain('npm install etcd3');
    expect(pgErr).toMatchObject({ name: 'PostgresDriverMissingError' });
    expect(pgErr!.message).toContain('npm install pg');
    expect(JSON.stringify(pgErr)).not.toContain(new URL(pg.url).password);
  }, 60_000);
});

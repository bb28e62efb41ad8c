import 'reflect-metadata';
import { Controller, Injectable, Logger, Scope } from '@nestjs/common';
import { Cron, Interval, ScheduleModule, Timeout } from '@nestjs/schedule';
import { describe, expect, it, vi } from 'vitest';
import {
  InjectMasterElection,
  MasterElectionModule,
  MasterElectionService,
  MasterOnly,
  OnBecomeMaster,
  OnBecomeSlave,
  OnElectionError,
  type MasterTerm,
} from 'nestjs-master-election';
import {
  EventLog,
  FAST,
  leaderAndFollower,
  useHarness,
  waitForRole,
  type TestApp,
} from './helpers.js';

// The metadata keys of @nestjs/schedule (its decorators set them on the method function).
const SCHEDULER_TYPE = 'SCHEDULER_TYPE';
const SCHEDULE_INTERVAL_OPTIONS = 'SCHEDULE_INTERVAL_OPTIONS';
const SCHEDULE_CRON_OPTIONS = 'SCHEDULE_CRON_OPTIONS';

describe('@MasterOnly() (no election)', () => {
  class Jobs {
    calls = 0;

    @Interval(1000)
    @MasterOnly()
    below(): number {
      return ++this.calls;
    }

    @MasterOnly('other')
    @Interval('named', 2000)
    above(): number {
      return ++this.calls;
    }

    @MasterOnly()
    @Cron('*/5 * * * * *', { name: 'cron' })
    cron(): number {
      return ++this.calls;
    }
  }

  it('keeps the metadata of decorators applied before or after it', () => {
    const proto = Jobs.prototype;
    expect(Reflect.getMetadata(SCHEDULER_TYPE, proto.below)).toBeDefined();
    expect(Reflect.getMetadata(SCHEDULE_INTERVAL_OPTIONS, proto.below)).toEqual({ timeout: 1000 });
    expect(Reflect.getMetadata(SCHEDULER_TYPE, proto.above)).toBeDefined();
    expect(Reflect.getMetadata(SCHEDULE_INTERVAL_OPTIONS, proto.above)).toEqual({ timeout: 2000 });
    expect(Reflect.getMetadata(SCHEDULE_CRON_OPTIONS, proto.cron)).toMatchObject({
      cronTime: '*/5 * * * * *',
      name: 'cron',
    });
    expect(proto.below.name).toBe('below');
    expect(proto.above.name).toBe('above');
  });

  it('a skipped async method returns a promise of undefined; a plain one returns undefined', async () => {
    const debug = vi.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    class AsyncJobs {
      calls = 0;
      @MasterOnly()
      async job(): Promise<string> {
        await Promise.resolve();
        this.calls++;
        return 'ran';
      }
      @MasterOnly()
      plain(): string {
        this.calls++;
        return 'ran';
      }
    }
    const jobs = new AsyncJobs();
    const skipped = jobs.job();
    expect(skipped).toBeInstanceOf(Promise);
    expect(await skipped).toBeUndefined();
    expect(jobs.plain()).toBeUndefined();
    expect(jobs.calls).toBe(0);
    debug.mockRestore();
  });

  it('does not run the body when no election can be told (debug log)', () => {
    const debug = vi.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    const jobs = new Jobs();
    expect(jobs.below()).toBeUndefined();
    expect(jobs.above()).toBeUndefined();
    expect(jobs.calls).toBe(0);
    expect(debug).toHaveBeenCalledWith(
      'Jobs.below skipped: this process is not the master of the default election',
    );
    debug.mockRestore();
  });
});

describe('decorators in applications', () => {
  const h = useHarness();

  it('@MasterOnly() with @Interval()/@Timeout() runs only on the master, in either decorator order', async () => {
    @Injectable()
    class Jobs {
      readonly runs = new EventLog<{ job: string; master: boolean }>();
      constructor(private readonly election: MasterElectionService) {}

      @Interval(40)
      @MasterOnly()
      intervalBelow(): void {
        this.runs.push({ job: 'below', master: this.election.isMaster() });
      }

      @MasterOnly()
      @Interval(40)
      async intervalAbove(): Promise<void> {
        await Promise.resolve();
        this.runs.push({ job: 'above', master: this.election.isMaster() });
      }

      @MasterOnly()
      @Timeout(0)
      once(): void {
        this.runs.push({ job: 'timeout', master: this.election.isMaster() });
      }
    }

    const timings = { leaseMs: 5000, renewDeadlineMs: 3000, retryPeriodMs: 500 };
    const startApp = (address: string): Promise<TestApp> =>
      h.app({
        imports: [
          ScheduleModule.forRoot(),
          MasterElectionModule.forRoot({ uri: h.server.uri, name: 'cron', address, ...timings }),
        ],
        providers: [Jobs],
      });
    const [a, b] = await Promise.all([startApp('a:1'), startApp('b:2')]);
    const { leader, follower } = await leaderAndFollower(a, b);
    const leaderRuns = leader.app.get(Jobs).runs;
    const followerRuns = follower.app.get(Jobs).runs;

    // The leader runs both intervals repeatedly...
    for (const job of ['below', 'above']) {
      let seen = 0;
      await leaderRuns.next((r) => r.job === job && ++seen === 3, `3 runs of ${job}`);
    }
    // ...while every tick of the follower was skipped, and the timeout (fired at boot,
    // before any election) ran nowhere.
    expect(follower.service().isMaster()).toBe(false);
    expect(followerRuns.all).toEqual([]);
    expect(leaderRuns.all.every((r) => r.master)).toBe(true);
    expect(leaderRuns.all.some((r) => r.job === 'timeout')).toBe(false);
  });

  it('@MasterOnly() with @Cron() runs every second on the master only; async ones resolve on the follower too', async () => {
    @Injectable()
    class CronJobs {
      readonly runs = new EventLog<{ master: boolean; token: number }>();
      constructor(private readonly election: MasterElectionService) {}

      @Cron('* * * * * *')
      @MasterOnly()
      async everySecond(): Promise<number> {
        await Promise.resolve();
        this.runs.push({ master: this.election.isMaster(), token: this.election.fencingToken });
        return this.election.fencingToken;
      }
    }

    const startApp = (address: string): Promise<TestApp> =>
      h.app({
        imports: [
          ScheduleModule.forRoot(),
          MasterElectionModule.forRoot({ uri: h.server.uri, name: 'cron-1s', address, ...FAST }),
        ],
        providers: [CronJobs],
      });
    const [a, b] = await Promise.all([startApp('a:1'), startApp('b:2')]);
    const { master, leader, follower } = await leaderAndFollower(a, b);
    // The cron fires on both every second; the body runs on the leader only.
    let seen = 0;
    await leader.app
      .get(CronJobs)
      .runs.next((r) => r.token === master.term && ++seen === 2, '2 cron runs on the master');
    expect(follower.app.get(CronJobs).runs.all).toEqual([]);
    expect(leader.app.get(CronJobs).runs.all.every((r) => r.master)).toBe(true);
    // Called directly on the follower: skipped, yet a promise.
    await expect(follower.app.get(CronJobs).everySecond()).resolves.toBeUndefined();
    await expect(leader.app.get(CronJobs).everySecond()).resolves.toBe(master.term);
  });

  it('warns about request-scoped and transient providers and skips them', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    h.defer(() => warn.mockRestore());
    const calls: string[] = [];

    @Injectable({ scope: Scope.REQUEST })
    class PerRequest {
      @OnBecomeMaster()
      becomeMaster(): void {
        calls.push('request');
      }
    }

    @Injectable({ scope: Scope.TRANSIENT })
    class Transient {
      @OnElectionError()
      error(): void {
        calls.push('transient');
      }
    }

    @Controller()
    class Ctl {
      readonly terms = new EventLog<MasterTerm>();
      @OnBecomeMaster()
      becomeMaster(term: MasterTerm): void {
        this.terms.push(term);
        calls.push('controller');
      }
    }

    const app = await h.app({
      imports: [
        MasterElectionModule.forRoot({
          uri: h.server.uri,
          name: 'scoped',
          address: 'a:1',
          ...FAST,
        }),
      ],
      providers: [PerRequest, Transient],
      controllers: [Ctl],
    });
    const messages = warn.mock.calls.map((c) => String(c[0]));
    expect(messages).toContainEqual(
      expect.stringMatching(
        /@OnBecomeMaster handler "PerRequest\.becomeMaster".*request-scoped or transient.*skipped/,
      ),
    );
    expect(messages).toContainEqual(
      expect.stringMatching(
        /@OnElectionError handler "Transient\.error".*request-scoped or transient.*skipped/,
      ),
    );
    await app.app.get(Ctl).terms.next(() => true, 'the controller handler');
    await waitForRole(app.service(), 'master');
    expect(calls).toEqual(['controller']);
  });

  it('delivers to stacked decorators and several methods, once per registration', async () => {
    @Injectable()
    class Stacked {
      readonly log = new EventLog<string>();

      @OnBecomeMaster()
      @OnBecomeSlave()
      @OnBecomeMaster('stack') // the default registration is "stack" too: still once
      any(arg: unknown): void {
        this.log.push(typeof arg === 'string' ? `any:slave:${arg}` : 'any:master');
      }

      @OnBecomeMaster()
      other(): void {
        this.log.push('other:master');
      }

      @OnBecomeMaster('unknown-election')
      never(): void {
        this.log.push('never');
      }
    }

    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    h.defer(() => warn.mockRestore());
    const app = await h.app({
      imports: [
        MasterElectionModule.forRoot({ uri: h.server.uri, name: 'stack', address: 'a:1', ...FAST }),
      ],
      providers: [Stacked, { provide: 'alias', useExisting: Stacked }],
    });
    await waitForRole(app.service(), 'master');
    const log = app.app.get(Stacked).log;
    expect([...log.all].sort()).toEqual(['any:master', 'other:master']);
    expect(warn.mock.calls.map((c) => String(c[0]))).toContainEqual(
      expect.stringContaining(
        '@OnBecomeMaster("unknown-election") on "Stacked.never" names no election',
      ),
    );
  });

  it('routes a failing @OnBecomeSlave handler to @OnElectionError and the logger', async () => {
    const error = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    h.defer(() => error.mockRestore());
    const oops = new Error('cannot follow');

    @Injectable()
    class Follower {
      readonly errors = new EventLog<Error>();
      @OnBecomeSlave()
      follow(): never {
        throw oops;
      }
      @OnElectionError()
      onError(err: Error): void {
        this.errors.push(err);
      }
    }

    const options = { uri: h.server.uri, name: 'follow', ...FAST };
    const a = await h.app({
      imports: [MasterElectionModule.forRoot({ ...options, address: 'a:1' })],
    });
    await waitForRole(a.service(), 'master');
    const b = await h.app({
      imports: [MasterElectionModule.forRoot({ ...options, address: 'b:2' })],
      providers: [Follower],
    });
    expect(await b.app.get(Follower).errors.next(() => true, 'the error')).toBe(oops);
    expect(error).toHaveBeenCalledWith(
      expect.stringContaining(
        '@OnBecomeSlave handler "Follower.follow" of election "follow" failed',
      ),
      oops.stack,
    );
    expect(b.service().state).toMatchObject({ role: 'slave', master: 'a:1' });
  });

  it('selects elections by name: two named elections in one app sharing one connection', async () => {
    @Injectable()
    class Both {
      readonly log = new EventLog<string>();
      constructor(
        @InjectMasterElection() readonly byDefault: MasterElectionService,
        @InjectMasterElection('alpha') readonly alpha: MasterElectionService,
        @InjectMasterElection('beta') readonly beta: MasterElectionService,
        readonly plain: MasterElectionService,
      ) {}

      @OnBecomeMaster()
      defaultMaster(term: MasterTerm): void {
        this.log.push(`default:${term.fencingToken}`);
      }

      @OnBecomeMaster('alpha')
      alphaMaster(): void {
        this.log.push('alpha');
      }

      @OnBecomeMaster('beta')
      betaMaster(): void {
        this.log.push('beta');
      }

      @MasterOnly('beta')
      betaJob(): string {
        return 'ran';
      }
    }

    const common = { uri: h.server.uri, address: 'a:1', ...FAST };
    const app = await h.app({
      imports: [
        MasterElectionModule.forRoot({ ...common, name: 'alpha' }),
        MasterElectionModule.forRoot({ ...common, name: 'beta', isDefault: false }),
      ],
      providers: [Both],
    });
    const both = app.app.get(Both);
    expect(both.byDefault).toBe(both.alpha);
    expect(both.plain).toBe(both.alpha);
    expect(both.beta).not.toBe(both.alpha);
    expect(both.beta.name).toBe('beta');
    expect(both.beta.isDefault).toBe(false);

    await Promise.all([waitForRole(both.alpha, 'master'), waitForRole(both.beta, 'master')]);
    const alphaTerm = both.alpha.state.term;
    expect([...both.log.all].sort()).toEqual(['alpha', 'beta', `default:${alphaTerm}`].sort());
    expect(both.betaJob()).toBe('ran');
    await both.beta.resign();
    expect(both.betaJob()).toBeUndefined();
    expect(both.alpha.isMaster()).toBe(true);

    // One connection for both elections, closed with the application.
    expect(h.server.connections).toBe(1);
    await app.close();
    await vi.waitFor(() => expect(h.server.connections).toBe(0), { timeout: 10_000 });
  });
});

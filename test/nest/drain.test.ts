/**
 * Handover drains leader work in progress (issue 18 item 4), and a skipped
 * `@MasterOnly` call is logged once per term (item 6).
 */
import { Inject, Injectable } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import {
  MasterElectionModule,
  MasterElectionService,
  MasterOnly,
  OnBecomeMaster,
} from 'nestjs-master-election';
import {
  EventLog,
  FAST,
  RecordingLogger,
  leaderAndFollower,
  useHarness,
  waitFor,
  waitForRole,
  type TestApp,
} from './helpers.js';

/** A lease with room for a drain: up to 2 s (leaseMs - renewDeadlineMs). */
const ROOMY = { leaseMs: 3_000, renewDeadlineMs: 1_000, retryPeriodMs: 250 } as const;

/** What happened, in order, across the replicas of a test. */
type Step = { what: 'job-started' | 'job-finished' | 'master'; address: string };

describe('handover drains running @MasterOnly calls', () => {
  const h = useHarness();

  const setup = (drainTimeoutMs?: number) => {
    const timeline = new EventLog<Step>();
    let finish!: () => void;
    const finishing = new Promise<void>((r) => (finish = r));

    @Injectable()
    class Jobs {
      constructor(
        @Inject('ADDRESS') readonly address: string,
        readonly election: MasterElectionService,
      ) {}

      @OnBecomeMaster()
      becomeMaster(): void {
        timeline.push({ what: 'master', address: this.address });
      }

      /** Leader-only work that runs until the test lets it finish. */
      @MasterOnly()
      async sweep(): Promise<string> {
        timeline.push({ what: 'job-started', address: this.address });
        await finishing;
        // Still a few turns of the event loop of work after that.
        for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
        timeline.push({ what: 'job-finished', address: this.address });
        return 'swept';
      }
    }

    const loggers = new Map<string, RecordingLogger>();
    const startApp = (address: string): Promise<TestApp> => {
      const logger = new RecordingLogger();
      loggers.set(address, logger);
      return h.app(
        {
          imports: [
            MasterElectionModule.forRoot({
              uri: h.server.uri,
              name: 'drain',
              address,
              ...ROOMY,
              logger,
              ...(drainTimeoutMs === undefined ? {} : { drainTimeoutMs }),
            }),
          ],
          providers: [Jobs, { provide: 'ADDRESS', useValue: address }],
        },
        { http: true },
      );
    };
    /** Two replicas, the master running a job. */
    const runningJob = async () => {
      const { leader, follower } = await leaderAndFollower(
        await startApp('a:1'),
        await startApp('b:2'),
      );
      const old = leader.service().address;
      const run = leader.app.get(Jobs).sweep();
      await timeline.next((s) => s.what === 'job-started', 'the job to start');
      return { leader, follower, old, run, logger: loggers.get(old)! };
    };
    return { timeline, finish, runningJob };
  };

  it('on shutdown the old master finishes its running job before the next master starts', async () => {
    const { timeline, finish, runningJob } = setup();
    const { leader, follower, old, run, logger } = await runningJob();

    const closing = leader.close(); // what SIGTERM does with enableShutdownHooks
    // The term ends at once; the release waits for the job.
    await logger.next(
      'log',
      /term \d+ ended; waiting for 1 running @MasterOnly call\(s\) \(Jobs\.sweep\)/,
    );
    expect(leader.service().isMaster()).toBe(false);
    finish();
    expect(await run).toBe('swept');
    await closing;
    await waitForRole(follower.service(), 'master');

    const steps = timeline.all.map((s) => `${s.what}@${s.address}`);
    const finished = steps.indexOf(`job-finished@${old}`);
    const next = steps.indexOf(`master@${follower.service().address}`);
    expect(finished).toBeGreaterThan(-1);
    expect(next).toBeGreaterThan(finished);
    expect(logger.find('log', /finished after \d+ ms; releasing the term/)).toHaveLength(1);
  });

  it('a job that overruns drainTimeoutMs does not hold the election: the term is released after the bound', async () => {
    const { finish, runningJob } = setup(300);
    const { leader, follower, run, logger } = await runningJob();
    await leader.service().resign();
    await waitForRole(follower.service(), 'master');
    expect(
      logger.find(
        'warn',
        /Jobs\.sweep still running 300 ms \(drainTimeoutMs\) after term \d+ ended/,
      ),
    ).toHaveLength(1);
    // The job is not interrupted: it still finishes.
    finish();
    expect(await run).toBe('swept');
  });

  it('drainTimeoutMs: 0 releases at once (abort on term.signal instead)', async () => {
    const { timeline, finish, runningJob } = setup(0);
    const { leader, follower, run, logger } = await runningJob();
    await leader.service().resign();
    await waitForRole(follower.service(), 'master');
    expect(timeline.all.some((s) => s.what === 'job-finished')).toBe(false);
    expect(logger.find('log', /waiting for/)).toHaveLength(0);
    finish();
    await run;
  });
});

describe('a skipped @MasterOnly call is logged once per term', () => {
  const h = useHarness();

  it("logs the first skip of each term at debug level (logLevel: 'debug'), and nothing below 'log' by default", async () => {
    @Injectable()
    class Ticker {
      runs = 0;
      @MasterOnly()
      tick(): void {
        this.runs++;
      }
    }
    const debugLogger = new RecordingLogger();
    const quietLogger = new RecordingLogger();
    const startApp = (
      address: string,
      logger: RecordingLogger,
      follower: boolean,
    ): Promise<TestApp> =>
      h.app({
        imports: [
          MasterElectionModule.forRoot({
            uri: h.server.uri,
            name: 'ticks',
            address,
            ...FAST,
            logger,
            // The follower never runs for master, so every term is the other's.
            ...(follower ? { logLevel: 'debug' as const, participating: false } : {}),
          }),
        ],
        providers: [Ticker],
      });
    const master = await startApp('m:1', quietLogger, false);
    await waitForRole(master.service(), 'master');
    const follower = await startApp('f:2', debugLogger, true);
    await waitForRole(follower.service(), 'slave');
    const ticker = follower.app.get(Ticker);
    for (let i = 0; i < 50; i++) ticker.tick();
    expect(ticker.runs).toBe(0);
    const skipped = /^Ticker\.tick skipped: this process is not the master of election "ticks"/;
    expect(debugLogger.find('debug', skipped)).toHaveLength(1);
    const first = follower.service().state.term;
    expect(debugLogger.find('debug', skipped)[0]!.message).toContain(`master m:1, term ${first}`);

    // A new term: the master forces an election, which it wins again.
    await master.service().forceMasterElection();
    await waitFor(
      follower.service().state$,
      (s) => s.role === 'slave' && s.term > first,
      'the follower to see the new term',
    );
    for (let i = 0; i < 50; i++) ticker.tick();
    expect(ticker.runs).toBe(0);
    expect(debugLogger.find('debug', skipped)).toHaveLength(2);
    expect(debugLogger.find('debug', skipped)[1]!.message).toContain(
      `master m:1, term ${follower.service().state.term}`,
    );
    // The default level keeps debug lines (connection chatter, skips) out.
    expect(quietLogger.lines.all.filter((l) => l.level === 'debug')).toHaveLength(0);
    expect(debugLogger.lines.all.some((l) => l.level === 'debug')).toBe(true);
  });
});

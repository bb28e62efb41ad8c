/**
 * Bounded `@OnBecomeMaster` handlers (issue 17) and backoff after failed
 * terms (issue 18), on the embedded server with two replicas.
 */
import { Inject, Injectable } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  MasterElectionModule,
  MasterHandlerTimeoutError,
  OnBecomeMaster,
  OnElectionError,
  type MasterTerm,
} from 'nestjs-master-election';
import {
  EventLog,
  FAST,
  RecordingLogger,
  useHarness,
  waitForRole,
  type TestApp,
} from './helpers.js';

/** Polls `check` on every state change and every 50 ms until it holds (health has no stream). */
async function eventually(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const until = performance.now() + ms;
  while (!check()) {
    if (performance.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

describe('@OnBecomeMaster handlers with a bound', () => {
  const h = useHarness();

  it('a handler that never returns: the term is given up, another replica takes over, health reports it, shutdown stays bounded', async () => {
    let releaseHang!: () => void;
    const hang = new Promise<void>((r) => (releaseHang = r));
    h.defer(() => releaseHang());

    @Injectable()
    class Leader {
      constructor(
        /** Whether this replica's handler hangs (its first term only). */
        @Inject('HANGS') private hangs: boolean,
      ) {}
      readonly terms = new EventLog<MasterTerm>();
      readonly errors = new EventLog<Error>();
      @OnBecomeMaster()
      async start(term: MasterTerm): Promise<void> {
        this.terms.push(term);
        if (this.hangs) {
          this.hangs = false;
          await hang; // ignores term.signal: never returns until the test lets it
        }
      }
      @OnElectionError()
      error(err: Error): void {
        this.errors.push(err);
      }
    }

    const logger = new RecordingLogger();
    const startApp = (address: string, hangs: boolean): Promise<TestApp> =>
      h.app({
        imports: [
          MasterElectionModule.forRoot({
            uri: h.server.uri,
            name: 'stuck',
            address,
            ...FAST,
            becomeMasterTimeoutMs: 1_000,
            failureBackoffMs: 200,
            ...(hangs ? { logger } : {}),
          }),
        ],
        providers: [Leader, { provide: 'HANGS', useValue: hangs }],
      });

    // A alone: it wins, and its handler hangs.
    const a = await startApp('a:1', true);
    const aLeader = a.app.get(Leader);
    const stuckTerm = await aLeader.terms.next(() => true, 'a term for A');
    const b = await startApp('b:2', false);

    // B takes over within the bound plus a lease (generous wait: a loaded machine).
    await waitForRole(b.service(), 'master');
    expect(b.app.get(Leader).terms.all.length).toBeGreaterThan(0);
    expect(stuckTerm.signal.aborted).toBe(true);

    // A reported a typed error naming the handler, to @OnElectionError and in its log.
    const err = await aLeader.errors.next((e) => e instanceof MasterHandlerTimeoutError, 'timeout');
    expect(err).toMatchObject({
      handler: 'Leader.start',
      election: 'stuck',
      timeoutMs: 1_000,
      fencingToken: stuckTerm.fencingToken,
    });
    expect(
      logger.find(
        'error',
        /@OnBecomeMaster handler "Leader\.start" of election "stuck" has not completed within 1000 ms/,
      ),
    ).toHaveLength(1);

    // A's health is down while its handler is overdue, and A is not master.
    const health = a.service().health();
    expect(health.healthy).toBe(false);
    expect(health.reason).toMatch(/"Leader\.start".*still running/);
    expect(a.service().isMaster()).toBe(false);
    expect(b.service().health().healthy).toBe(true);

    // Once the handler settles, A is healthy again and takes part: it takes over from B.
    releaseHang();
    await logger.next(
      'warn',
      /"Leader\.start" of election "stuck" completed \d+ ms after its bound/,
    );
    await eventually(() => a.service().health().healthy, 'A healthy again');
    const started = performance.now();
    await b.close();
    await waitForRole(a.service(), 'master');
    expect(a.service().isMaster()).toBe(true);
    expect(performance.now() - started).toBeLessThan(20_000);
  });

  it('shutdown of a replica whose handler never returns completes', async () => {
    @Injectable()
    class Forever {
      readonly terms = new EventLog<MasterTerm>();
      @OnBecomeMaster()
      start(term: MasterTerm): Promise<void> {
        this.terms.push(term);
        return new Promise<void>(() => undefined);
      }
    }
    const app = await h.app({
      imports: [
        MasterElectionModule.forRoot({
          uri: h.server.uri,
          name: 'forever',
          address: 'a:1',
          ...FAST,
          becomeMasterTimeoutMs: 60_000, // still within the bound at shutdown
          logLevel: 'silent',
        }),
      ],
      providers: [Forever],
    });
    const term = await app.app.get(Forever).terms.next(() => true, 'a term');
    expect(app.service().state.role).toBe('candidate');
    await app.close();
    expect(term.signal.aborted).toBe(true);
    expect(app.service().state.role).toBe('stopped');
  });
});

describe('backoff after failed master terms', () => {
  const h = useHarness();

  it('two replicas whose handler always throws: few terms in a window, one stack per replica, growing sit-outs', async () => {
    const terms = new EventLog<{ token: number; at: number }>();

    @Injectable()
    class Broken {
      @OnBecomeMaster()
      start(term: MasterTerm): void {
        terms.push({ token: term.fencingToken, at: performance.now() });
        throw new Error('the database is down');
      }
    }

    const loggers = [new RecordingLogger(), new RecordingLogger()];
    const apps = await Promise.all(
      ['a:1', 'b:2'].map((address, i) =>
        h.app({
          imports: [
            MasterElectionModule.forRoot({
              uri: h.server.uri,
              name: 'flapping',
              address,
              ...FAST,
              // The defaults: 1 s after the first failure, doubling, jittered.
              logger: loggers[i],
            }),
          ],
          providers: [Broken],
        }),
      ),
    );
    // The window starts at the first failed term and lasts 4 s. With backoff, a replica
    // fails at f1, then no earlier than f1 + 0.5 s, + 1 s, + 2 s: at most 4 terms each.
    // (Without it: about 40 terms a second per replica.) Timers never fire early, so a
    // loaded machine only makes fewer terms.
    const { at: start } = await terms.next(() => true, 'a first term');
    const WINDOW_MS = 4_000;
    await sleep(WINDOW_MS); // the measurement window itself (not waiting for an event)
    const inWindow = terms.all.filter((t) => t.at - start <= WINDOW_MS);
    expect(inWindow.length).toBeGreaterThanOrEqual(2);
    expect(inWindow.length).toBeLessThanOrEqual(8);
    expect(new Set(inWindow.map((t) => t.token)).size).toBe(inWindow.length);

    for (const logger of loggers) {
      const failures = logger.find(
        'error',
        /@OnBecomeMaster handler "Broken\.start" of election "flapping" failed/,
      );
      if (failures.length === 0) continue; // this replica never won in the window
      // The first failure with its stack, every repeat on one line with a count.
      expect(failures[0]!.stack).toContain('the database is down');
      for (const [i, f] of failures.slice(1).entries()) {
        expect(f.stack).toBeUndefined();
        expect(f.message).toContain(`failed again (${i + 2} terms in a row, same error)`);
      }
      expect(logger.lines.all.filter((l) => l.stack !== undefined)).toHaveLength(1);
      const sitOuts = logger
        .find('warn', /sits out the election for \d+ ms/)
        .map((l) => Number(/for (\d+) ms/.exec(l.message)?.[1]));
      expect(sitOuts.length).toBe(failures.length);
      for (let i = 1; i < sitOuts.length; i++) {
        expect(sitOuts[i]).toBeGreaterThanOrEqual(sitOuts[i - 1]!);
      }
      // The log does not flood: a handful of lines per failed term.
      expect(logger.lines.all.length).toBeLessThanOrEqual(failures.length * 8 + 10);
    }
    for (const app of apps) expect(app.service().isMaster()).toBe(false);
  });
});

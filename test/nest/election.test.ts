import { Injectable, Logger } from '@nestjs/common';
import { firstValueFrom } from 'rxjs';
import { describe, expect, it, vi } from 'vitest';
import {
  MasterElectionModule,
  MasterElectionService,
  MastershipWaitError,
  OnBecomeMaster,
  OnBecomeSlave,
  OnElectionError,
  type ElectionState,
  type MasterTerm,
} from 'nestjs-master-election';
import { EventLog, FAST, useHarness, waitFor, waitForRole, type TestApp } from './helpers.js';

type Event =
  | { type: 'master'; term: MasterTerm }
  | { type: 'slave'; master: string }
  | { type: 'error'; error: Error };

@Injectable()
class Handlers {
  readonly log = new EventLog<Event>();

  @OnBecomeMaster()
  becomeMaster(term: MasterTerm): void {
    this.log.push({ type: 'master', term });
  }

  @OnBecomeSlave()
  becomeSlave(master: string): void {
    this.log.push({ type: 'slave', master });
  }

  @OnElectionError()
  error(error: Error): void {
    this.log.push({ type: 'error', error });
  }
}

const count = (app: TestApp, type: Event['type']): number =>
  app.app.get(Handlers).log.all.filter((e) => e.type === type).length;

describe('MasterElectionModule with the embedded server', () => {
  const h = useHarness();

  const startApp = (address: string, extra: object = {}): Promise<TestApp> =>
    h.app({
      imports: [
        MasterElectionModule.forRoot({
          uri: h.server.uri,
          name: 'jobs',
          address,
          ...FAST,
          ...extra,
        }),
      ],
      providers: [Handlers],
    });

  it.each([2, 3])('%i app instances in one process elect exactly one master', async (n) => {
    const apps = await Promise.all(
      Array.from({ length: n }, (_, i) => startApp(`app-${i + 1}:${1000 + i}`)),
    );
    const services = apps.map((a) => a.service());
    const master = await Promise.race(services.map((s) => waitForRole(s, 'master')));
    // Every other instance follows that master.
    await Promise.all(
      services.filter((s) => s.address !== master.master).map((s) => waitForRole(s, 'slave')),
    );
    for (const s of services) expect(s.getCurrentMaster()).toBe(master.master);
    expect(services.filter((s) => s.isMaster())).toHaveLength(1);
    expect(services.find((s) => s.isMaster())?.address).toBe(master.master);
    expect(await services[0]?.readCurrentMaster()).toBe(master.master);
  });

  it('fires each decorator exactly once per transition', async () => {
    const a = await startApp('app-a:1');
    const aMaster = await a.app.get(Handlers).log.next((e) => e.type === 'master', 'a master');
    await waitForRole(a.service(), 'master');

    const b = await startApp('app-b:2');
    const bLog = b.app.get(Handlers).log;
    expect(await bLog.next((e) => e.type === 'slave', 'b slave')).toEqual({
      type: 'slave',
      master: 'app-a:1',
    });

    // A resigns: B takes over, A follows B.
    await a.service().resign();
    expect(a.service().isMaster()).toBe(false);
    const bMaster = await bLog.next((e) => e.type === 'master', 'b master');
    await a.app.get(Handlers).log.next((e) => e.type === 'slave', 'a slave');
    await waitForRole(b.service(), 'master');
    expect(b.service().isMaster()).toBe(true);
    if (aMaster.type !== 'master' || bMaster.type !== 'master') throw new Error('unreachable');
    expect(bMaster.term.fencingToken).toBeGreaterThan(aMaster.term.fencingToken);
    expect(aMaster.term.signal.aborted).toBe(true);

    // Closing delivers every pending notification first: the counts are final.
    await a.close();
    await b.close();
    expect([count(a, 'master'), count(a, 'slave'), count(a, 'error')]).toEqual([1, 1, 0]);
    expect([count(b, 'master'), count(b, 'slave'), count(b, 'error')]).toEqual([1, 1, 0]);
    expect(a.app.get(Handlers).log.all.at(-1)).toEqual({ type: 'slave', master: 'app-b:2' });
  });

  it('hands over at once when the master shuts down (app.close() with enableShutdownHooks)', async () => {
    // A lease of 30 s: only the resignation can explain a quick takeover.
    const slow = { leaseMs: 30_000, renewDeadlineMs: 10_000, retryPeriodMs: 500 };
    const appOf = (address: string): Promise<TestApp> =>
      h.app(
        {
          imports: [
            MasterElectionModule.forRoot({ uri: h.server.uri, name: 'handover', address, ...slow }),
          ],
          providers: [Handlers],
        },
        { http: true },
      );
    // A fresh election waits a full lease before its first master (the engine cannot tell
    // a lease file that never existed from one lost with the server's state): let a
    // fast-timed process win it and hand over to A, as A will hand over to B.
    const bootstrap = await startApp('bootstrap:0', { name: 'handover' });
    await waitForRole(bootstrap.service(), 'master');
    const a = await appOf('app-a:1');
    await waitForRole(a.service(), 'slave');
    await bootstrap.close();
    await waitForRole(a.service(), 'master');
    const b = await appOf('app-b:2');
    await waitForRole(b.service(), 'slave');

    const started = performance.now();
    const bMaster = b.app.get(Handlers).log.next((e) => e.type === 'master', 'b master');
    await a.close();
    await bMaster;
    await waitForRole(b.service(), 'master');
    const elapsed = performance.now() - started;
    expect(elapsed).toBeLessThan(7_500); // far below the 30 s lease (typically well under a second)
    expect(b.service().getCurrentMaster()).toBe('app-b:2');
  });

  it('forces an election when an @OnBecomeMaster handler throws, and reports the error', async () => {
    const boom = new Error('cannot start leader work');
    let calls = 0;
    const logged = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    h.defer(() => logged.mockRestore());

    @Injectable()
    class Failing {
      readonly log = new EventLog<Event>();
      @OnBecomeMaster()
      becomeMaster(term: MasterTerm): Promise<void> {
        this.log.push({ type: 'master', term });
        calls++;
        return calls === 1 ? Promise.reject(boom) : Promise.resolve();
      }
      @OnElectionError()
      error(error: Error): void {
        this.log.push({ type: 'error', error });
      }
    }

    const app = await h.app({
      imports: [
        MasterElectionModule.forRoot({
          uri: h.server.uri,
          name: 'failing',
          address: 'a:1',
          ...FAST,
        }),
      ],
      providers: [Failing],
    });
    const service = app.service();
    const roles: string[] = [];
    service.state$.subscribe((s) => roles.push(`${s.role}@${s.term}`));
    const log = app.app.get(Failing).log;

    const error = await log.next((e) => e.type === 'error', 'the error');
    expect(error).toEqual({ type: 'error', error: boom });
    const first = log.all.find((e) => e.type === 'master');
    if (first?.type !== 'master') throw new Error('no first term');
    expect(first.term.signal.aborted).toBe(true);

    // The forced election gives this (only) participant a new term once its abstention ends.
    const second = await log.next(
      (e) => e.type === 'master' && e.term.fencingToken > first.term.fencingToken,
      'a second term',
    );
    const term = await service.waitForMastership({ timeoutMs: 20_000 });
    if (second.type !== 'master') throw new Error('unreachable');
    expect(term).toBe(second.term);
    expect(service.fencingToken).toBe(term.fencingToken);
    // The failed term never counted as master.
    expect(roles).not.toContain(`master@${first.term.fencingToken}`);
    expect(roles).toContain(`master@${term.fencingToken}`);
    expect(log.all.filter((e) => e.type === 'error')).toHaveLength(1);
    expect(logged).toHaveBeenCalledWith(
      expect.stringContaining(
        '@OnBecomeMaster handler "Failing.becomeMaster" of election "failing" failed',
      ),
      boom.stack,
    );
  });

  it('counts as master only once every @OnBecomeMaster handler has completed', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const seen: boolean[] = [];
    let service!: MasterElectionService;

    @Injectable()
    class Slow {
      readonly started = new EventLog<MasterTerm>();
      constructor(private readonly election: MasterElectionService) {
        service = election;
      }
      @OnBecomeMaster()
      async first(term: MasterTerm): Promise<void> {
        seen.push(this.election.isMaster());
        this.started.push(term);
        await gate;
      }
      @OnBecomeMaster()
      second(): void {
        seen.push(this.election.isMaster());
      }
    }

    const app = await h.app({
      imports: [
        MasterElectionModule.forRoot({
          uri: h.server.uri,
          name: 'slow',
          address: 'a:1',
          leaseMs: 2000,
          renewDeadlineMs: 1400,
          retryPeriodMs: 300,
        }),
      ],
      providers: [Slow],
    });
    const term = await app.app.get(Slow).started.next(() => true, 'handler start');
    expect(service.isMaster()).toBe(false);
    expect(service.state).toMatchObject({ role: 'candidate', term: term.fencingToken });
    expect(service.fencingToken).toBe(term.fencingToken);
    await expect(service.waitForMastership({ timeoutMs: 50 })).rejects.toMatchObject({
      reason: 'timeout',
    });
    const waiting = service.waitForMastership();
    release();
    expect(await waiting).toBe(term);
    expect(service.isMaster()).toBe(true);
    expect(service.state).toEqual({ role: 'master', master: 'a:1', term: term.fencingToken });
    expect(seen).toEqual([false, false]);

    // The moment the term ends, the process no longer counts as master.
    await service.resign();
    expect(term.signal.aborted).toBe(true);
    expect(service.isMaster()).toBe(false);
    expect(service.currentTerm).toBeUndefined();
  });

  it('stops counting as master the moment the term ends, and reports an involuntary end', async () => {
    const a = await startApp('a:1');
    const service = a.service();
    const log = a.app.get(Handlers).log;
    const state = await waitForRole(service, 'master');
    const term = service.currentTerm;
    expect(term?.fencingToken).toBe(state.term);

    h.server.pause(); // renewals go unanswered: the master steps down at its renew deadline
    const stepDown = await log.next((e) => e.type === 'error', 'the step-down error');
    expect(stepDown).toMatchObject({
      type: 'error',
      error: { name: 'MasterStepDownError', reason: 'renew-deadline', fencingToken: state.term },
    });
    expect(term?.signal.aborted).toBe(true);
    expect(service.isMaster()).toBe(false);
    expect(service.currentTerm).toBeUndefined();
    expect(service.state.role).not.toBe('master');
    h.server.resume();
  });

  it('waitForMastership rejects on abort, on shutdown and for a passive registration', async () => {
    const a = await startApp('a:1');
    await waitForRole(a.service(), 'master');
    const b = await startApp('b:2');
    const passive = await startApp('p:3', { participating: false });
    await waitForRole(b.service(), 'slave');

    const controller = new AbortController();
    const aborted = b.service().waitForMastership({ signal: controller.signal });
    controller.abort(new Error('no longer needed'));
    await expect(aborted).rejects.toBeInstanceOf(MastershipWaitError);
    await expect(aborted).rejects.toMatchObject({ reason: 'aborted' });

    await expect(passive.service().waitForMastership()).rejects.toMatchObject({
      reason: 'not-participating',
    });
    expect(passive.service().getCurrentMaster()).toBe('a:1');

    const stopped = b.service().waitForMastership();
    await b.close();
    await expect(stopped).rejects.toMatchObject({ reason: 'stopped' });
    expect(b.service().state.role).toBe('stopped');
    await expect(b.service().resign()).rejects.toThrow(/not running/);
  });

  it('forceMasterElection() on the master: it steps down, never shows as a slave of itself, and a new term follows', async () => {
    const a = await startApp('a:1');
    const service = a.service();
    const log = a.app.get(Handlers).log;
    const first = await waitForRole(service, 'master');
    const firstTerm = service.currentTerm!;
    const states: ElectionState[] = [];
    const sub = service.state$.subscribe((s) => states.push(s));
    h.defer(() => sub.unsubscribe());

    await service.forceMasterElection();
    expect(firstTerm.signal.aborted).toBe(true);
    expect(firstTerm.signal.reason).toMatchObject({ reason: 'forced' });
    expect(service.isMaster()).toBe(false);
    // The only participant wins the new election: a new term, with a larger token.
    const next = await waitFor(
      service.state$,
      (s) => s.role === 'master' && s.term > first.term,
      'a new term',
    );
    expect(next.master).toBe('a:1');
    await log.next((e) => e.type === 'master' && e.term.fencingToken === next.term, 'becomeMaster');
    // Between the terms: 'candidate', never "slave of a:1" (the election file still named it).
    const between = states.filter((s) => s.term !== next.term && s.role !== 'master');
    expect(between.length).toBeGreaterThan(0);
    expect(between).toContainEqual({ role: 'candidate', master: 'a:1', term: first.term });
    expect(states.filter((s) => s.role === 'slave' && s.master === 'a:1')).toEqual([]);
    // A stepping down that was asked for is no error.
    expect(log.all.filter((e) => e.type === 'error')).toEqual([]);
  });

  it('after resign() the old master reports candidate, then slave of the new master, never slave of itself', async () => {
    const a = await startApp('a:1');
    await waitForRole(a.service(), 'master');
    const b = await startApp('b:2');
    await waitForRole(b.service(), 'slave');
    const states: ElectionState[] = [];
    const sub = a.service().state$.subscribe((s) => states.push(s));
    h.defer(() => sub.unsubscribe());

    await a.service().resign();
    await waitFor(
      a.service().state$,
      (s) => s.role === 'slave' && s.master === 'b:2',
      'A to follow B',
    );
    expect(states.some((s) => s.role === 'candidate' && s.master === 'a:1')).toBe(true);
    expect(states.filter((s) => s.role === 'slave' && s.master === 'a:1')).toEqual([]);
  });

  it('state$ replays the current state to a late subscriber, synchronously', async () => {
    const a = await startApp('a:1');
    const master = await waitForRole(a.service(), 'master');
    const seen: ElectionState[] = [];
    // Subscribed long after the election settled: the current state comes at once.
    a.service()
      .state$.subscribe((s) => seen.push(s))
      .unsubscribe();
    expect(seen).toEqual([{ role: 'master', master: 'a:1', term: master.term }]);
    expect(a.service().state).toEqual(seen[0]);

    const b = await startApp('b:2');
    await waitForRole(b.service(), 'slave');
    const late = await firstValueFrom(b.service().state$);
    expect(late).toEqual({ role: 'slave', master: 'a:1', term: master.term });
  });

  it('hands an AggregateError to @OnElectionError when several @OnBecomeMaster handlers fail', async () => {
    const logged = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    h.defer(() => logged.mockRestore());
    const one = new Error('first handler failed');
    const two = new Error('second handler failed');

    @Injectable()
    class TwoFailing {
      readonly errors = new EventLog<Error>();
      @OnBecomeMaster()
      first(): never {
        throw one;
      }
      @OnBecomeMaster()
      async second(): Promise<void> {
        await Promise.resolve();
        throw two;
      }
      @OnElectionError()
      onError(err: Error): void {
        this.errors.push(err);
      }
    }

    const app = await h.app({
      imports: [
        MasterElectionModule.forRoot({ uri: h.server.uri, name: 'two', address: 'a:1', ...FAST }),
      ],
      providers: [TwoFailing],
    });
    const err = await app.app.get(TwoFailing).errors.next(() => true, 'the error');
    expect(err).toBeInstanceOf(AggregateError);
    expect((err as AggregateError).errors).toEqual(expect.arrayContaining([one, two]));
    expect((err as AggregateError).errors).toHaveLength(2);
    expect(err.message).toMatch(/2 @OnBecomeMaster handlers failed/);
    expect(app.service().isMaster()).toBe(false);
  });

  it('forceElectionOnStart starts a new term when the process joins', async () => {
    const a = await startApp('a:1');
    const first = await waitForRole(a.service(), 'master');
    await startApp('b:2', { forceElectionOnStart: true });
    // Whoever wins, A sees a new term.
    const next = await waitFor(
      a.service().state$,
      (s) => s.term > first.term && (s.role === 'master' || s.role === 'slave'),
      'a new term',
    );
    expect(next.term).toBeGreaterThan(first.term);
  });
});

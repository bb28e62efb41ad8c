import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DoozerClient } from '../../lib/doozer/index.js';
import {
  ElectionConfigError,
  MasterStepDownError,
  electionPath,
  leasePath,
  type MasterElectionEventReceiver,
  type MasterElectionOptions,
  type MasterTerm,
} from '../../lib/election/index.js';
import { MasterElectionClient } from '../../lib/backends/doozer/index.js';
import { parseLease } from '../../lib/election/lease.js';
import { DoozerServer } from '../../lib/testing/index.js';
import { ManualClock } from '../../lib/testing/manual-clock.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';
import { Recorder } from './recorder.js';

const NAME = 'jobs';
const E = electionPath(NAME);
const L = leasePath(NAME);
const TIMING = { leaseMs: 10_000, renewDeadlineMs: 7_000, retryPeriodMs: 2_000 };

let server: DoozerServer;
let raw: DoozerClient;
const cleanup: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  server = await DoozerServer.start({ heartbeatMs: 0 });
  raw = await DoozerClient.connect(server.uri);
});

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
  await raw.close();
  await server.close();
});

interface Participant {
  election: MasterElectionClient;
  rec: Recorder;
  clock: ManualClock;
  client: DoozerClient;
}

async function join(
  address: string,
  options: MasterElectionOptions & {
    participating?: boolean;
    clock?: ManualClock;
    name?: string;
    uri?: string;
    receiverOverride?: Partial<MasterElectionEventReceiver>;
  } = {},
): Promise<Participant> {
  const clock = options.clock ?? new ManualClock();
  const client = await DoozerClient.connect(options.uri ?? server.uri, {
    reconnect: { initialDelayMs: 5, maxDelayMs: 20 },
  });
  cleanup.push(() => client.close());
  const rec = new Recorder();
  const receiver = options.receiverOverride
    ? {
        becomeMaster: (t: MasterTerm) => rec.becomeMaster(t),
        becomeSlave: (m: string, token: number) => rec.becomeSlave(m, token),
        electionError: (e: Error) => rec.electionError(e),
        electionFatal: (e: Error) => rec.electionFatal(e),
        ...options.receiverOverride,
      }
    : rec;
  const election = await MasterElectionClient.create(
    client,
    options.name ?? NAME,
    address,
    options.participating ?? true,
    receiver,
    {
      ...TIMING,
      electionJitterMs: 0,
      ...options,
      clock,
      uri: undefined,
      receiverOverride: undefined,
    } as MasterElectionOptions,
  );
  cleanup.push(() => election.close());
  return { election, rec, clock, client };
}

/**
 * Waits for the first master of a fresh store: a missing lease may hide a
 * master that still acts (a server that lost its state), so candidates wait
 * it out for leaseMs before the first election.
 */
async function elect(...ps: Participant[]): Promise<Participant> {
  const clocks = [...new Set(ps.map((p) => p.clock))];
  for (const c of clocks) c.advance(TIMING.leaseMs);
  await waitFor(() => ps.some((p) => p.election.isMaster()), 'a first master', {
    step: tick(...clocks),
  });
  return ps.find((p) => p.election.isMaster())!;
}

/** Runs due zero-delay timers of the given clocks while waiting. */
const tick =
  (...clocks: ManualClock[]) =>
  () => {
    for (const c of clocks) c.advance(0);
  };

async function lease() {
  const f = await raw.get(L);
  return { rev: f.rev, record: parseLease(f.text) };
}

describe('MasterElectionClient: election', () => {
  it('a lone participant becomes master: election file holds its address, lease names its term', async () => {
    const a = await join('10.0.0.1:80');
    await elect(a);
    const e = await raw.get(E);
    expect(e.text).toBe('10.0.0.1:80');
    expect(a.election.fencingToken).toBe(e.rev);
    expect(a.rec.events).toEqual([{ type: 'master', token: e.rev }]);
    const l = await lease();
    expect(l.record).toMatchObject({ state: 'held', term: e.rev, holder: '10.0.0.1:80', seq: 0 });
    expect(a.election.state).toEqual({ role: 'master', master: '10.0.0.1:80', term: e.rev });
    expect(a.election.getCurrentMaster()).toBe('10.0.0.1:80');
  });

  it('a logger that throws does not break the election', async () => {
    const boom = (): never => {
      throw new Error('logger broke');
    };
    const a = await join('10.0.0.1:80', {
      logger: { log: boom, warn: boom, error: boom, debug: boom },
    });
    await elect(a);
    expect(a.election.isMaster()).toBe(true);
    // A forced election logs on the way; the client steps down and is elected again.
    await a.election.forceMasterElection();
    await a.election.whenIdle();
    expect(a.election.state.role).not.toBe('stopped');
  });

  it('a participant that starts after a master reports becomeSlave(master) and does not run', async () => {
    const a = await join('10.0.0.1:80');
    await elect(a);
    const b = await join('10.0.0.2:80', { clock: a.clock });
    await b.election.whenIdle();
    expect(b.rec.events).toEqual([{ type: 'slave', master: '10.0.0.1:80' }]);
    expect(b.rec.slaveTokens).toEqual([a.election.fencingToken]);
    expect(b.election.fencingToken).toBe(a.election.fencingToken);
    expect(b.election.isMaster()).toBe(false);
    expect(b.election.state.role).toBe('slave');
  });

  it('20 participants starting together elect exactly one master, with one write of the election file', async () => {
    const clock = new ManualClock();
    const all = await Promise.all(
      Array.from({ length: 20 }, (_, i) => join(`10.0.1.${i}:80`, { clock })),
    );
    await elect(...all);
    await Promise.all(all.map((p) => p.election.whenIdle()));
    const masters = all.filter((p) => p.election.isMaster());
    expect(masters).toHaveLength(1);
    const winner = masters[0]!.election.address;
    const e = await raw.get(E);
    expect(e.text).toBe(winner);
    for (const p of all) {
      if (p === masters[0]) continue;
      expect(p.rec.count('master')).toBe(0);
      expect(p.rec.slaves()).toEqual([winner]);
    }
    // Exactly one SET of the election file happened: history holds one change.
    const first = await raw.wait(E, 1);
    expect(first.rev).toBe(e.rev);
  });

  it('a passive client never writes, follows masters, and stays slave without one', async () => {
    const p = await join('10.0.0.9:80', { participating: false });
    await p.election.whenIdle();
    expect(p.election.state).toEqual({ role: 'slave', master: '', term: 0 });
    const before = await raw.rev();
    p.clock.advance(TIMING.leaseMs * 3);
    await p.election.whenIdle();
    expect(await raw.rev()).toBe(before);
    const a = await join('10.0.0.1:80', { clock: p.clock });
    await elect(a);
    await waitFor(() => p.rec.slaves().length === 1, 'becomeSlave', { step: tick(p.clock) });
    expect(p.rec.slaves()).toEqual(['10.0.0.1:80']);
    expect(a.election.isMaster()).toBe(true);
  });

  it('renewals write only the lease, never the election file', async () => {
    const a = await join('10.0.0.1:80');
    await elect(a);
    const e = await raw.get(E);
    const l0 = await lease();
    for (let i = 1; i <= 3; i++) {
      a.clock.advance(TIMING.retryPeriodMs);
      await waitFor(() => a.election.isMaster(), 'still master');
      await a.election.whenIdle();
      const l = await lease();
      expect(l.rev).toBeGreaterThan(l0.rev);
      expect(l.record).toMatchObject({ state: 'held', term: e.rev, seq: i });
    }
    expect((await raw.get(E)).rev).toBe(e.rev);
  });
});

describe('MasterElectionClient: timing rules', () => {
  it('isMaster() turns false at the renew deadline before any timer fires, then the term aborts', async () => {
    const a = await join('10.0.0.1:80');
    await elect(a);
    const term = a.election.currentTerm!;
    server.pause(); // renewals get no answer
    a.clock.advance(TIMING.retryPeriodMs); // a renewal starts and hangs
    expect(a.election.isMaster()).toBe(true);
    // A frozen process wakes after the deadline: time moved, no timer ran yet.
    a.clock.jump(TIMING.renewDeadlineMs);
    expect(a.election.isMaster()).toBe(false);
    expect(term.isValid()).toBe(false);
    expect(term.signal.aborted).toBe(false);
    // A health probe reports the stuck master as found (reads have no side
    // effects); the runner steps it down as soon as its deadline timer runs.
    const health = a.election.health();
    expect(health).toMatchObject({ healthy: false, role: 'master' });
    expect(health.reason).toMatch(/stuck/);
    expect(term.signal.aborted).toBe(false);
    a.clock.advance(0);
    expect(term.signal.aborted).toBe(true);
    expect(a.election.state.role).not.toBe('master');
    expect(term.signal.reason).toBeInstanceOf(MasterStepDownError);
    expect((term.signal.reason as MasterStepDownError).reason).toBe('renew-deadline');
    server.resume();
    await waitFor(() => a.rec.errors().length > 0, 'electionError');
    expect(a.rec.errors()[0]).toBeInstanceOf(MasterStepDownError);
  });

  it('a follower deposes a silent master only after a full leaseMs on its own clock since it saw a renewal', async () => {
    const a = await join('10.0.0.1:80');
    await elect(a);
    const b = await join('10.0.0.2:80'); // its own clock
    await b.election.whenIdle();
    // A renews once; B sees it, on B's clock, at b0.
    const before = b.election.diagnostics().versionKey;
    a.clock.advance(TIMING.retryPeriodMs);
    await waitFor(() => b.election.diagnostics().versionKey !== before, 'b to see the renewal');
    // A now freezes (its clock stops). B waits leaseMs - 1 ms: nothing happens.
    b.clock.advance(TIMING.leaseMs - 1);
    await b.election.whenIdle();
    expect((await raw.get(E)).text).toBe('10.0.0.1:80');
    expect(b.election.isMaster()).toBe(false);
    // One more millisecond: B deposes A and takes over.
    b.clock.advance(1);
    await waitFor(() => b.election.isMaster(), 'b to take over', { step: tick(b.clock) });
    const e = await raw.get(E);
    expect(e.text).toBe('10.0.0.2:80');
    expect(b.rec.events.at(-1)).toEqual({ type: 'master', token: e.rev });
    // A sees its election file replaced and steps down at once, though its clock stood still.
    await waitFor(() => !a.election.isMaster(), 'a to step down');
    expect(a.rec.slaves()).toEqual(['10.0.0.2:80']);
    expect(a.election.fencingToken).toBe(e.rev);
  });

  it('a renewal seen by a follower restarts its lease timer', async () => {
    const a = await join('10.0.0.1:80');
    await elect(a);
    const b = await join('10.0.0.2:80');
    await b.election.whenIdle();
    b.clock.advance(TIMING.leaseMs - 100);
    const before = b.election.diagnostics().versionKey;
    a.clock.advance(TIMING.retryPeriodMs);
    await waitFor(() => b.election.diagnostics().versionKey !== before, 'b to see the renewal');
    b.clock.advance(TIMING.leaseMs - 1);
    await b.election.whenIdle();
    expect((await raw.get(E)).text).toBe('10.0.0.1:80');
    b.clock.advance(1);
    await waitFor(() => b.election.isMaster(), 'b to take over', { step: tick(b.clock) });
  });

  it('after an operator deletes the election file, the old master releases its lease and one participant wins a new term', async () => {
    const clock = new ManualClock();
    const a = await join('10.0.0.1:80', { clock });
    await elect(a);
    const b = await join('10.0.0.2:80', { clock });
    await b.election.whenIdle();
    const token = a.election.fencingToken;
    const oldTerm = a.election.currentTerm!;
    await raw.del(E, -1); // an operator forces an election
    await waitFor(
      () => [a, b].some((p) => p.election.isMaster() && p.election.fencingToken > token),
      'a new term',
      { step: tick(clock) },
    );
    expect(oldTerm.signal.aborted).toBe(true);
    expect((oldTerm.signal.reason as MasterStepDownError).reason).toBe('election-changed');
    expect([a, b].filter((p) => p.election.isMaster())).toHaveLength(1);
    const winner = [a, b].find((p) => p.election.isMaster())!;
    const l = await lease();
    expect(l.record).toMatchObject({ holder: winner.election.address, state: 'held' });
    expect(l.record?.term).toBe(winner.election.fencingToken);
    // The forced election is not an error.
    expect(a.rec.errors()).toEqual([]);
  });

  it('a candidate does not take a lease a live holder still holds, even with the election file gone', async () => {
    const clock = new ManualClock();
    const a = await join('10.0.0.1:80', { clock });
    await elect(a);
    // A stops following (its connection is cut) but its lease record stays held.
    await a.election.close().catch(() => {});
    const held = await lease();
    await raw.set(
      L,
      held.rev,
      JSON.stringify({ ...held.record, state: 'held', id: 'someone-else', seq: 99 }),
    );
    await raw.del(E, -1);
    const b = await join('10.0.0.2:80', { clock });
    await b.election.whenIdle();
    clock.advance(TIMING.leaseMs - 1);
    await b.election.whenIdle();
    expect(b.election.isMaster()).toBe(false);
    expect((await raw.get(E)).rev).toBe(0);
    clock.advance(1);
    await waitFor(() => b.election.isMaster(), 'b after the lease ran out', { step: tick(clock) });
  });
});

describe('MasterElectionClient: handover and forced elections', () => {
  it('resign() hands over at once, without waiting for the lease', async () => {
    const clock = new ManualClock();
    const a = await join('10.0.0.1:80', { clock });
    await elect(a);
    const b = await join('10.0.0.2:80', { clock });
    const token = a.election.fencingToken;
    const term = a.election.currentTerm!;
    await a.election.resign();
    expect(term.signal.aborted).toBe(true);
    expect((term.signal.reason as MasterStepDownError).reason).toBe('resigned');
    await waitFor(() => b.election.isMaster(), 'b master', { step: tick(clock) });
    expect(b.election.fencingToken).toBeGreaterThan(token);
    expect(a.rec.slaves()).toEqual(['10.0.0.2:80']);
    expect(a.rec.errors()).toEqual([]);
  });

  it('close() of the master hands over and resolves syncWait()', async () => {
    const clock = new ManualClock();
    const a = await join('10.0.0.1:80', { clock });
    await elect(a);
    const b = await join('10.0.0.2:80', { clock });
    const stopped = a.election.syncWait();
    await a.election.close();
    await stopped;
    expect(a.election.state.role).toBe('stopped');
    await waitFor(() => b.election.isMaster(), 'b master', { step: tick(clock) });
  });

  it('a lone master that resigns runs again after leaseMs', async () => {
    const a = await join('10.0.0.1:80');
    await elect(a);
    await a.election.resign();
    await a.election.whenIdle();
    a.clock.advance(TIMING.leaseMs - 1);
    await a.election.whenIdle();
    expect(a.election.isMaster()).toBe(false);
    a.clock.advance(1);
    await waitFor(() => a.election.isMaster(), 'a master again', { step: tick(a.clock) });
    expect(a.rec.count('master')).toBe(2);
  });

  it('forceMasterElection() from a passive client runs a new election that every client follows', async () => {
    const clock = new ManualClock();
    const a = await join('10.0.0.1:80', { clock });
    await elect(a);
    const p = await join('10.0.0.9:80', { clock, participating: false });
    const token = a.election.fencingToken;
    await p.election.forceMasterElection();
    await waitFor(() => p.election.fencingToken > token && a.election.isMaster(), 'a new term', {
      step: tick(clock),
    });
    expect(a.rec.count('master')).toBe(2);
    expect(p.rec.slaves()).toEqual(['10.0.0.1:80', '10.0.0.1:80']);
  });

  it('becomeMaster throwing is reported and forces an election that another wins', async () => {
    const clock = new ManualClock();
    const a = await join('10.0.0.1:80', { clock });
    a.rec.failBecomeMaster = new Error('cannot start the job');
    clock.advance(TIMING.leaseMs);
    await waitFor(() => a.rec.count('master') === 1, 'a elected', { step: tick(clock) });
    const b = await join('10.0.0.2:80', { clock });
    await waitFor(() => b.election.isMaster(), 'b master', { step: tick(clock) });
    expect(a.election.isMaster()).toBe(false);
    expect(a.rec.errors().map((e) => e.message)).toContain('cannot start the job');
  });

  it('a lease written by someone else ends the term with lease-lost', async () => {
    const a = await join('10.0.0.1:80');
    await elect(a);
    const term = a.election.currentTerm!;
    await raw.set(L, -1, 'garbage');
    await waitFor(() => term.signal.aborted, 'step down');
    expect((term.signal.reason as MasterStepDownError).reason).toBe('lease-lost');
    await waitFor(() => a.rec.errors().length === 1, 'electionError');
  });
});

describe('MasterElectionClient: faults', () => {
  it('survives dropped connections: resyncs, keeps one master', async () => {
    const clock = new ManualClock();
    const a = await join('10.0.0.1:80', { clock });
    await elect(a);
    const b = await join('10.0.0.2:80', { clock });
    server.dropConnections();
    clock.advance(TIMING.retryPeriodMs);
    await waitFor(() => a.election.health().healthy && b.election.health().healthy, 'resync');
    clock.advance(TIMING.retryPeriodMs);
    await a.election.whenIdle();
    expect(a.election.isMaster()).toBe(true);
    expect(b.election.isMaster()).toBe(false);
  });

  it('steps every master down when the server loses its state, then elects again', async () => {
    const a = await join('10.0.0.1:80');
    await elect(a);
    // Push the rev up so a fresh store is clearly behind.
    for (let i = 0; i < 100; i++) await raw.nop();
    const term = a.election.currentTerm!;
    await server.restart({ keepState: false });
    await waitFor(() => term.signal.aborted, 'step down');
    expect((term.signal.reason as MasterStepDownError).reason).toBe('store-reset');
    // The fresh store has no lease: it is waited out like a silent holder.
    await runUntil(a, () => a.election.isMaster(), 'a master again', { step: 100 });
  });

  it('deposes a master that never took a lease (a Go participant) unless told to respect it', async () => {
    const goRev = await raw.set(E, 0, '192.168.1.1:4000');
    const clock = new ManualClock();
    const respectful = await join('10.0.0.3:80', { clock, respectLeaselessMaster: true });
    // Alone, a respectful participant follows the Go master however long it is silent.
    clock.advance(TIMING.leaseMs * 3);
    await respectful.election.whenIdle();
    const untouched = await raw.get(E);
    expect([untouched.rev, untouched.text]).toEqual([goRev, '192.168.1.1:4000']);
    expect((await raw.get(L)).rev).toBe(0);
    expect(respectful.election.state).toMatchObject({ role: 'slave', master: '192.168.1.1:4000' });
    const a = await join('10.0.0.1:80', { clock });
    expect(a.rec.slaves()).toEqual(['192.168.1.1:4000']);
    clock.advance(TIMING.leaseMs - 1);
    await a.election.whenIdle();
    expect((await raw.get(E)).text).toBe('192.168.1.1:4000');
    clock.advance(1);
    await waitFor(() => a.election.isMaster() || respectful.election.isMaster(), 'a new master', {
      step: tick(clock),
    });
    expect(respectful.rec.slaves()[0]).toBe('192.168.1.1:4000');
  });

  it('stops with electionFatal when writes are refused', async () => {
    const locked = await DoozerServer.start({ heartbeatMs: 0, rwSecret: 'rw-secret' });
    cleanup.push(() => locked.close());
    const client = await DoozerClient.connect(locked.uri);
    cleanup.push(() => client.close());
    const rec = new Recorder();
    const clock = new ManualClock();
    const e = await MasterElectionClient.create(client, NAME, '10.0.0.1:80', true, rec, {
      ...TIMING,
      electionJitterMs: 0,
      clock,
    });
    clock.advance(TIMING.leaseMs);
    await waitFor(() => rec.count('fatal') === 1, 'electionFatal', { step: tick(clock) });
    await e.syncWait();
    expect(e.state.role).toBe('stopped');
    expect(rec.events.find((x) => x.type === 'fatal')?.type).toBe('fatal');
  });
});

/** Runs `ms` of a participant's clock in `step` increments, letting its requests finish in between. */
async function run(p: Participant, ms: number, step = 100): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    p.clock.advance(step);
    await p.election.whenIdle();
  }
}

/**
 * Moves a participant's clock on `step` ms at a time until `cond()` holds,
 * never faster than its I/O: after each step the election's requests in
 * flight get their answers (real time) before the clock moves again, so a
 * slow machine sees the same sequence of events as a fast one. Stops, with
 * `cond()` false, once the clock reaches `until`. Fails after 30 s of real
 * time with `what` in the message.
 */
async function runUntil(
  p: Participant,
  cond: () => boolean,
  what: string,
  { step = 10, until = Infinity }: { step?: number; until?: number } = {},
): Promise<void> {
  const giveUp = Date.now() + 30_000;
  while (!cond() && p.clock.now() + step <= until) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
    p.clock.advance(step);
    await p.election.whenIdle();
    // Also let through what the election does not count as in flight (its WAIT stream).
    await new Promise((r) => setTimeout(r, 1));
  }
}

describe('MasterElectionClient: reconnection and store identity', () => {
  it('a participant that reconnects late to a store restarted empty does not mistake a new lease for the old one', async () => {
    const proxy = await TcpProxy.start(server.port);
    cleanup.push(() => proxy.close());
    const a = await join('10.0.0.1:80');
    await elect(a);
    const c = await join('10.0.0.3:80', { uri: proxy.uri });
    await c.election.whenIdle();
    expect(c.election.state).toMatchObject({ role: 'slave', master: '10.0.0.1:80' });
    await run(a, 2 * TIMING.retryPeriodMs); // two renewals
    const old = { election: await raw.get(E), lease: await raw.get(L) };
    await waitFor(() => c.election.health().healthy, 'C to have seen the renewals');
    await c.election.whenIdle();

    // C is cut off; its clock runs on, far past a lease.
    proxy.block();
    await waitFor(() => c.client.state !== 'connected', 'C cut off');
    c.clock.advance(3 * TIMING.leaseMs);
    // The store is lost. A notices (the rev went back), waits out the missing
    // lease and is elected again: same revs, same holder, same term number.
    const term = a.election.currentTerm!;
    await server.restart({ keepState: false });
    await waitFor(() => term.signal.aborted, 'A to step down');
    await runUntil(a, () => a.election.isMaster(), 'A master again', { step: 100 });
    await run(a, 2 * TIMING.retryPeriodMs);
    const now = { election: await raw.get(E), lease: await raw.get(L) };
    expect([now.election.rev, now.election.text, now.lease.rev]).toEqual([
      old.election.rev,
      old.election.text,
      old.lease.rev,
    ]);

    // C comes back: the rev did not go back, the revs match what it remembers,
    // but the lease is a new term's record, so its lease timer starts over.
    proxy.unblock();
    // (C's resync retries back off on its own clock: let it run.)
    await runUntil(c, () => c.election.health().healthy, 'C resynced');
    await c.election.whenIdle();
    c.clock.advance(TIMING.leaseMs - 1);
    await c.election.whenIdle();
    expect(c.election.isMaster()).toBe(false);
    expect(a.election.isMaster()).toBe(true);
    expect((await raw.get(E)).text).toBe('10.0.0.1:80');
  });

  it('a former master hears becomeSlave for a new master at its old rev after the store was lost', async () => {
    const a = await join('10.0.0.1:80');
    await elect(a);
    const token = a.election.fencingToken;
    const b = await join('10.0.0.2:80');
    await b.election.whenIdle();
    await server.restart({ keepState: false });
    await waitFor(() => !a.election.isMaster(), 'A to step down');
    await waitFor(
      () => a.election.health().healthy && b.election.health().healthy,
      'both resynced',
    );
    b.clock.advance(TIMING.leaseMs);
    await waitFor(() => b.election.isMaster(), 'B master', { step: tick(b.clock) });
    expect(b.election.fencingToken).toBe(token); // the same rev, in the new store
    await waitFor(() => a.rec.slaves().at(-1) === '10.0.0.2:80', 'A told of B');
    await a.election.whenIdle();
    expect(a.election.state).toMatchObject({ role: 'slave', master: '10.0.0.2:80' });
  });

  it('a master that reconnects shortly before its deadline renews at once and stays master', async () => {
    const a = await join('10.0.0.1:80');
    await elect(a);
    await run(a, TIMING.retryPeriodMs); // one renewal: the deadline now counts from it
    expect((await lease()).record?.seq).toBe(1);
    const term = a.election.currentTerm!;
    const deadline = term.deadline;
    await server.stop();
    await waitFor(() => a.client.state !== 'connected', 'disconnect');
    // Renewals fail while the server is down; the term runs on its last one.
    // It comes back with less than a retry period left: the retry pending
    // then (due within 1 s, retries are 0.25-0.5 retry periods apart) falls
    // at least 0.9 s before the deadline, time the requests it makes (bounded
    // by what is left of the term) get in real time.
    await run(a, deadline - a.clock.now() - 1_900);
    expect(a.election.isMaster()).toBe(true);
    await server.restart({ keepState: true });
    await waitFor(() => a.client.state === 'connected', 'reconnect');
    // The next retry finds its connection gone, reads the lease on the new one
    // (still ours), and must renew right away: a retry period from then is
    // past the deadline. The clock waits for each answer before it moves on.
    await runUntil(a, () => term.deadline > deadline, 'a renewal on the new connection', {
      until: deadline - 1,
    });
    expect(term.deadline).toBeGreaterThan(deadline);
    await run(a, 2_000);
    expect(term.signal.aborted).toBe(false);
    expect(a.election.isMaster()).toBe(true);
    expect(a.rec.errors()).toEqual([]);
  });

  it('a participant that comes back to a store restarted empty waits out a missing lease again', async () => {
    const proxyA = await TcpProxy.start(server.port);
    cleanup.push(() => proxyA.close());
    const proxyM = await TcpProxy.start(server.port);
    cleanup.push(() => proxyM.close());
    // A sees the empty store (no election, no lease), then is cut off.
    const a = await join('10.0.0.1:80', { uri: proxyA.uri });
    await a.election.whenIdle();
    proxyA.block();
    await waitFor(() => a.client.state !== 'connected', 'A cut off');
    // M waits out the missing lease and becomes master; then it is cut off too.
    const m = await join('10.0.0.2:80', { uri: proxyM.uri });
    await elect(m);
    proxyM.block();
    await waitFor(() => m.client.state !== 'connected', 'M cut off');
    // The store is lost and comes back at A's rev, empty as A saw it.
    await server.restart({ keepState: false });
    a.clock.advance(3 * TIMING.leaseMs);
    proxyA.unblock();
    await runUntil(a, () => a.election.health().healthy, 'A resynced');
    // Nothing proves M is gone: A waits a full lease from now.
    a.clock.advance(TIMING.leaseMs - 50);
    await a.election.whenIdle();
    expect(a.election.isMaster()).toBe(false);
    expect(m.election.isMaster()).toBe(true);
    expect((await raw.get(E)).rev).toBe(0);
    proxyM.unblock(); // (so that M can close: its clock does not run on its own)
  });

  it('a reconnection to the same node does not restart the wait for a master without a lease', async () => {
    await raw.set(E, 0, '192.168.1.1:4000'); // a Go master: no lease, and it is gone
    const a = await join('10.0.0.1:80');
    await a.election.whenIdle();
    a.clock.advance(TIMING.leaseMs - 100);
    const before = a.client.connectionId;
    server.dropConnections();
    await runUntil(
      a,
      () => a.client.connectionId > before && a.election.health().healthy,
      'resync',
      {
        step: 1,
      },
    );
    // Same node, same store: the wait goes on from where it was (100 ms left).
    const resynced = a.clock.now();
    await runUntil(a, () => a.election.isMaster(), 'A deposes the Go master and wins');
    expect(a.clock.now() - resynced).toBeLessThan(TIMING.leaseMs / 2);
  });

  /**
   * p1 is master, p2's becomeSlave never returns, p3 follows; p1 resigns and
   * p2 wins the free lease first, so its becomeMaster waits behind the hung
   * handler. Runs `body`, then lets the handler return (so p2 can close).
   */
  async function withUnannouncedTerm(
    body: (
      p2: Participant,
      p3: Participant,
      won: () => boolean,
      release: () => void,
    ) => Promise<void>,
  ): Promise<void> {
    const p1 = await join('10.0.0.1:80');
    await elect(p1);
    let release!: () => void;
    const hung = new Promise<void>((r) => (release = r));
    const p2 = await join('10.0.0.2:80', { receiverOverride: { becomeSlave: () => hung } });
    try {
      const p3 = await join('10.0.0.3:80');
      await p3.election.whenIdle();
      await p1.election.resign();
      const won = (): boolean => p2.election.diagnostics().heldToken !== 0;
      await waitFor(won, 'p2 wins', { step: tick(p2.clock) });
      await body(p2, p3, won, release);
    } finally {
      release();
    }
  }

  it('a won term that cannot be announced (a handler hangs) is not kept: it ends at its deadline and another takes over', async () => {
    await withUnannouncedTerm(async (p2, p3, won) => {
      expect(p2.election.isMaster()).toBe(false);
      expect(p2.election.getCurrentMaster()).toBe('');
      await waitFor(
        () => /becomeMaster waits/.test(p2.election.health().reason ?? ''),
        'unhealthy',
        {
          step: () => p2.clock.advance(20),
        },
      );
      // Not renewed: at its deadline the term ends and is given back. (p2's
      // whenIdle() waits for its hung handler, so its clock moves by polling,
      // and only until the term has ended: the rest is real I/O, and p2 does
      // not run for master again meanwhile.)
      await waitFor(() => p3.election.isMaster(), 'p3 master', {
        step: () => {
          if (won()) p2.clock.advance(50);
          p3.clock.advance(0);
        },
      });
      expect(won()).toBe(false);
      expect(p2.election.isMaster()).toBe(false);
      expect(p2.rec.count('master')).toBe(0);
    });
  });

  it('resign() during a won term not yet announced gives it back, and becomeMaster never comes', async () => {
    await withUnannouncedTerm(async (p2, p3, won, release) => {
      await p2.election.resign();
      expect(won()).toBe(false);
      release();
      await p2.election.whenIdle();
      expect(p2.rec.count('master')).toBe(0);
      await waitFor(() => p3.election.isMaster(), 'p3 master', { step: tick(p3.clock) });
    });
  });

  it('close() while the election write is in flight gives back what it wrote', async () => {
    const a = await join('10.0.0.1:80');
    a.clock.advance(TIMING.leaseMs); // the candidate starts writing now
    await a.election.close();
    await a.election.whenIdle(); // every write it started has landed (or failed)
    expect(a.rec.count('master')).toBe(0);
    const e = await raw.get(E);
    const l = await lease();
    expect(e.rev).toBe(0);
    expect(l.record === null || l.record.state === 'released').toBe(true);
    expect(a.clock.pending).toBe(0);
  });

  it('resyncs after falling out of the server history (TOO_LATE) and follows on', async () => {
    const small = await DoozerServer.start({ heartbeatMs: 0, history: 20 });
    cleanup.push(() => small.close());
    const proxy = await TcpProxy.start(small.port);
    cleanup.push(() => proxy.close());
    const direct = await DoozerClient.connect(small.uri);
    cleanup.push(() => direct.close());
    const warnings: string[] = [];
    const logger = { log: () => {}, warn: (m: string) => void warnings.push(m), error: () => {} };
    const c = await join('10.0.0.3:80', { uri: proxy.uri, participating: false, logger });
    await direct.set(E, 0, '10.9.9.9:1');
    await waitFor(() => c.election.getCurrentMaster() === '10.9.9.9:1', 'C sees the master');
    // C's next WAIT is held back while the store moves past its history.
    proxy.hold();
    await direct.set('/ns/service/master-other/jobs', -1, 'x'); // matches C's glob: answers its WAIT
    for (let i = 0; i < 50; i++) await direct.set('/unrelated', -1, String(i));
    const moved = await direct.set(E, -1, '10.8.8.8:1');
    proxy.release();
    await waitFor(() => warnings.some((w) => /history/.test(w)), 'the TOO_LATE warning');
    await waitFor(() => c.election.getCurrentMaster() === '10.8.8.8:1', 'C resynced');
    expect(c.election.fencingToken).toBe(moved);
    expect(c.rec.slaves()).toEqual(['10.9.9.9:1', '10.8.8.8:1']);
  });
});

describe('MasterElectionClient: API', () => {
  it('close() does not hang on a handler that never settles: it waits renewDeadlineMs at most', async () => {
    await raw.set(E, 0, '10.1.1.1:1');
    const clock = new ManualClock();
    const client = await DoozerClient.connect(server.uri);
    cleanup.push(() => client.close());
    let called = false;
    const e = await MasterElectionClient.create(
      client,
      NAME,
      '10.0.0.1:80',
      false,
      {
        becomeMaster: () => {},
        becomeSlave: () => {
          called = true;
          return new Promise<void>(() => {}); // hangs forever
        },
      },
      { ...TIMING, clock },
    );
    await waitFor(() => called, 'becomeSlave');
    let closed = false;
    const closing = e.close().then(() => (closed = true));
    await waitFor(() => e.state.role === 'stopped', 'the stop');
    clock.advance(TIMING.renewDeadlineMs - 1);
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(false);
    clock.advance(1);
    await closing;
    expect(e.state.role).toBe('stopped');
  });

  it('readCurrentMaster() reads the server; it neither notifies nor changes what the participant reports', async () => {
    const p = await join('10.0.0.9:80', { participating: false });
    const slavesBefore = p.rec.slaves().length;
    await raw.set(E, 0, '10.1.1.1:1');
    expect(await p.election.readCurrentMaster()).toBe('10.1.1.1:1');
    // The participant's own follow (its watch) is what moves its state on,
    // and it notifies once; the read added no notification of its own.
    await waitFor(() => p.election.getCurrentMaster() === '10.1.1.1:1', 'the watch to follow', {
      step: tick(p.clock),
    });
    const state = p.election.state;
    expect(await p.election.readCurrentMaster()).toBe('10.1.1.1:1');
    expect(p.election.state).toEqual(state);
    expect(p.rec.slaves().slice(slavesBefore)).toEqual(['10.1.1.1:1']);
  });

  it.each([
    ['name', 'bad name', {}],
    ['name', '', {}],
    ['address', 'no-port', {}],
    ['renewDeadlineMs', 'ok', { leaseMs: 1000, renewDeadlineMs: 1000 }],
    ['retryPeriodMs', 'ok', { leaseMs: 1000, renewDeadlineMs: 500, retryPeriodMs: 600 }],
    ['leaseMs', 'ok', { leaseMs: -1 }],
    // Derived defaults that would collapse to 0 ms are reported against the option given.
    ['leaseMs', 'ok', { leaseMs: 3 }],
    ['renewDeadlineMs', 'ok', { leaseMs: 1000, renewDeadlineMs: 2 }],
    // More than a timer can hold would fire at once.
    ['leaseMs', 'ok', { leaseMs: 2 ** 31 }],
  ] as const)('rejects a bad %s at creation', async (option, name, timing) => {
    const rec = new Recorder();
    const address = option === 'address' ? 'no-port' : '10.0.0.1:80';
    const err = await MasterElectionClient.create(
      raw,
      option === 'name' ? name : NAME,
      address,
      true,
      rec,
      timing,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ElectionConfigError);
    expect((err as ElectionConfigError).option).toBe(option);
    expect((err as Error).message).toContain(option);
  });
});

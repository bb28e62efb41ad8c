/**
 * The engine on the in-memory store: following and deposing, handover,
 * forced elections, stepping down and giving terms back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../lib/testing/manual-clock.js';
import { Fleet, NAME, TIMING, reason } from './harness.js';

let fleet: Fleet;

afterEach(async () => {
  await fleet.close();
});

describe('engine: following and deposing', () => {
  it('a follower deposes a silent master only after a full leaseMs on its own clock since it saw a renewal', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80');
    const b = await fleet.join('10.0.0.2:80', { clock: new ManualClock() });
    const term = a.election.currentTerm!;
    await fleet.advance(TIMING.retryPeriodMs, a.clock); // A renews; B sees it now, on its clock
    // A freezes (its clock stops). B waits leaseMs - 1 ms: nothing happens.
    await fleet.run(TIMING.leaseMs - 1, 500, b.clock);
    expect(fleet.store.peek(NAME)?.holder).toBe('10.0.0.1:80');
    expect(b.election.isMaster()).toBe(false);
    await fleet.advance(1, b.clock);
    expect(b.election.isMaster()).toBe(true);
    expect(b.rec.events.at(-1)).toEqual({ type: 'master', token: b.election.fencingToken });
    // A sees its term ended and replaced, and steps down at once, though its clock stood still.
    expect(a.election.isMaster()).toBe(false);
    expect(reason(term)).toBe('election-changed');
    expect(a.rec.slaves()).toEqual(['10.0.0.2:80']);
    expect(a.election.fencingToken).toBe(b.election.fencingToken);
  });

  it('a renewal seen by a follower restarts its wait', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80');
    const b = await fleet.join('10.0.0.2:80', { clock: new ManualClock() });
    await fleet.run(TIMING.leaseMs - 100, 500, b.clock);
    await fleet.advance(TIMING.retryPeriodMs, a.clock);
    await fleet.run(TIMING.leaseMs - 1, 500, b.clock);
    expect(b.election.isMaster()).toBe(false);
    expect(a.election.isMaster()).toBe(true);
    await fleet.advance(1, b.clock);
    expect(b.election.isMaster()).toBe(true);
  });

  it('a candidate waits out a term ended by someone else from its holder’s last renewal, not from the end', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80');
    const bClock = new ManualClock();
    const b = await fleet.join('10.0.0.2:80', { clock: bClock });
    await fleet.run(3000, 500, bClock);
    // A is cut off; a passive participant forces an election: A's term is ended, not released.
    fleet.store.partition(a.election.id);
    const p = await fleet.join('10.0.0.9:80', { participating: false, clock: bClock });
    await p.election.forceMasterElection();
    await fleet.settle();
    expect(fleet.store.peek(NAME)?.state).toBe('ended');
    await fleet.run(TIMING.leaseMs - 3000 - 1, 500, bClock);
    expect(b.election.isMaster()).toBe(false);
    await fleet.advance(1, bClock);
    expect(b.election.isMaster()).toBe(true);
    fleet.store.heal(a.election.id);
  });

  it('deposes a master that never proves it is alive (unleased) unless told to respect it', async () => {
    fleet = new Fleet();
    const goToken = fleet.store.writeLeaselessMaster(NAME, '192.168.1.1:4000');
    const respectful = await fleet.join('10.0.0.3:80', { respectLeaselessMaster: true });
    expect(respectful.rec.slaves()).toEqual(['192.168.1.1:4000']);
    await fleet.run(TIMING.leaseMs * 3, 1000);
    expect(fleet.store.peek(NAME)).toMatchObject({ state: 'unleased', token: goToken });
    expect(respectful.election.state).toEqual({
      role: 'slave',
      master: '192.168.1.1:4000',
      term: goToken,
    });
    const a = await fleet.join('10.0.0.1:80');
    await fleet.run(TIMING.leaseMs - 1, 1000);
    expect(fleet.store.peek(NAME)?.state).toBe('unleased');
    await fleet.advance(1);
    expect(a.election.isMaster()).toBe(true);
    expect(respectful.rec.slaves()).toEqual(['192.168.1.1:4000', '10.0.0.1:80']);
  });

  it('with store expiry, a silent master is never deposed: the store ends its term, then one takes over at once', async () => {
    fleet = new Fleet({ expiry: 'store' });
    const a = await fleet.join('10.0.0.1:80');
    expect(a.election.isMaster()).toBe(true); // an empty store proves no master
    const b = await fleet.join('10.0.0.2:80');
    fleet.store.partition(a.election.id);
    const token = a.election.fencingToken;
    await fleet.run(TIMING.leaseMs - 100, 100);
    expect(a.election.isMaster()).toBe(false); // its own deadline came first
    expect(b.election.isMaster()).toBe(false);
    expect(fleet.store.peek(NAME)?.state).toBe('held');
    // The store's clock: leaseMs after A's last renewal, the record goes.
    await fleet.run(TIMING.retryPeriodMs, 100);
    expect(b.election.isMaster()).toBe(true);
    expect(b.election.fencingToken).toBeGreaterThan(token);
    fleet.store.heal(a.election.id);
  });
});

describe('engine: handover and forced elections', () => {
  it('resign() hands over at once; the resigner sits the next election out', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80');
    const b = await fleet.join('10.0.0.2:80');
    const term = a.election.currentTerm!;
    await a.election.resign();
    expect(term.signal.aborted).toBe(true);
    expect(reason(term)).toBe('resigned');
    await fleet.settle();
    expect(b.election.isMaster()).toBe(true);
    expect(b.election.fencingToken).toBeGreaterThan(term.fencingToken);
    expect(a.rec.slaves()).toEqual(['10.0.0.2:80']);
    expect(a.rec.errors()).toEqual([]);
  });

  it('a lone master that resigns runs again after leaseMs', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80');
    await a.election.resign();
    await fleet.settle();
    expect(fleet.store.peek(NAME)?.state).toBe('released');
    // Sitting the election out with no master known: a candidate, as the Nest layer reports it.
    const roles: string[] = [];
    const sub = a.election.state$.subscribe((s) => roles.push(`${s.role}:${s.master}`));
    expect(a.election.state).toEqual({ role: 'candidate', master: '', term: 0 });
    expect(roles).toEqual(['candidate:']);
    await fleet.run(TIMING.leaseMs / 2, 1000);
    expect(a.election.state).toEqual({ role: 'candidate', master: '', term: 0 });
    await fleet.run(TIMING.leaseMs / 2 - 1, 1000);
    sub.unsubscribe();
    expect(roles).toEqual(['candidate:']);
    expect(a.election.isMaster()).toBe(false);
    await fleet.advance(1);
    expect(a.election.isMaster()).toBe(true);
    expect(a.rec.count('master')).toBe(2);
  });

  it('close() of the master hands over and resolves syncWait()', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80');
    const b = await fleet.join('10.0.0.2:80');
    const stopped = a.election.syncWait();
    await a.election.close();
    await stopped;
    expect(a.election.state.role).toBe('stopped');
    expect(a.election.health()).toMatchObject({ healthy: false, reason: 'election stopped' });
    await fleet.settle();
    expect(b.election.isMaster()).toBe(true);
  });

  it('forceMasterElection() from a passive participant runs a new election that everyone follows', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80');
    const p = await fleet.join('10.0.0.9:80', { participating: false });
    const term = a.election.currentTerm!;
    await p.election.forceMasterElection();
    await fleet.settle();
    expect(reason(term)).toBe('election-changed');
    expect(a.election.isMaster()).toBe(true); // a forced election includes everyone
    expect(a.election.fencingToken).toBeGreaterThan(term.fencingToken);
    expect(a.rec.count('master')).toBe(2);
    expect(a.rec.errors()).toEqual([]);
    expect(p.rec.slaves()).toEqual(['10.0.0.1:80', '10.0.0.1:80']);
  });

  it('forceMasterElection() on the master steps down and stays a candidate', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80');
    const term = a.election.currentTerm!;
    await a.election.forceMasterElection();
    expect(reason(term)).toBe('forced');
    await fleet.settle();
    expect(a.election.isMaster()).toBe(true);
    expect(a.election.fencingToken).toBeGreaterThan(term.fencingToken);
  });

  it('becomeMaster throwing is reported and forces an election that another wins', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80', { noStart: true });
    a.rec.failBecomeMaster = new Error('cannot start the job');
    const b = await fleet.join('10.0.0.2:80', { noStart: true });
    await a.election.start();
    await fleet.settle();
    await b.election.start();
    await fleet.settle();
    expect(a.rec.count('master')).toBe(1);
    expect(a.election.isMaster()).toBe(false);
    expect(b.election.isMaster()).toBe(true);
    expect(a.rec.errors().map((e) => e.message)).toContain('cannot start the job');
    expect(reason(a.rec.terms[0]!)).toBe('become-master-failed');
  });

  it('a term lost without seeing it (a dropped change) ends on the next renewal with lease-lost', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80');
    const p = await fleet.join('10.0.0.9:80', { participating: false });
    const term = a.election.currentTerm!;
    fleet.store.dropNextChanges(1);
    await p.election.forceMasterElection();
    await fleet.settle();
    expect(fleet.store.peek(NAME)?.state).toBe('ended');
    expect(a.election.isMaster()).toBe(true); // it has not seen it yet
    await fleet.advance(TIMING.retryPeriodMs);
    expect(reason(term)).toBe('lease-lost');
    expect(a.rec.errors()).toHaveLength(1);
  });

  it('beforeRelease holds the release until it settles (at most leaseMs - renewDeadlineMs)', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    let finish!: () => void;
    const seen: number[] = [];
    const a = await fleet.join('10.0.0.1:80', {
      beforeRelease: (t) => {
        seen.push(t.fencingToken);
        return new Promise<void>((r) => (finish = r));
      },
    });
    const b = await fleet.join('10.0.0.2:80');
    const token = a.election.fencingToken;
    void a.election.resign();
    await fleet.settle();
    expect(seen).toEqual([token]);
    expect(fleet.store.peek(NAME)).toMatchObject({ state: 'held', token });
    expect(b.election.isMaster()).toBe(false);
    finish();
    await fleet.settle();
    expect(b.election.isMaster()).toBe(true);
    expect(b.election.fencingToken).toBeGreaterThan(token);
  });

  it('a beforeRelease that never settles is cut off after leaseMs - renewDeadlineMs', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const warnings: string[] = [];
    const logger = { log: () => {}, warn: (m: string) => void warnings.push(m), error: () => {} };
    const a = await fleet.join('10.0.0.1:80', {
      beforeRelease: () => new Promise(() => {}),
      logger,
    });
    const token = a.election.fencingToken;
    void a.election.resign();
    await fleet.run(TIMING.leaseMs - TIMING.renewDeadlineMs - 100, 100);
    expect(fleet.store.peek(NAME)).toMatchObject({ state: 'held', token });
    await fleet.run(100, 10);
    expect(fleet.store.peek(NAME)).toMatchObject({ state: 'released', token });
    expect(warnings.some((w) => /beforeRelease of term \d+ did not finish/.test(w))).toBe(true);
  });
});

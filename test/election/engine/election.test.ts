/**
 * The engine on the in-memory store: start, running for master, following,
 * renewals, handover and forced elections (docs/election-protocol.md,
 * "Transitions").
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ElectionConfigError, MasterStepDownError } from '../../../lib/election/index.js';
import { Fleet, NAME, TIMING } from './harness.js';

let fleet: Fleet;

afterEach(async () => {
  await fleet.close();
});

describe('engine: start and running for master', () => {
  it('a lone participant on an empty store waits out the missing record (leaseMs), then is master', async () => {
    fleet = new Fleet();
    const a = await fleet.join('10.0.0.1:80');
    expect(a.election.state).toEqual({ role: 'candidate', master: '', term: 0 });
    await fleet.advance(TIMING.leaseMs - 1);
    expect(a.election.isMaster()).toBe(false);
    expect(fleet.store.peek(NAME)).toBeNull();
    await fleet.advance(1);
    expect(a.election.isMaster()).toBe(true);
    const record = fleet.store.peek(NAME);
    expect(record).toMatchObject({ state: 'held', holder: '10.0.0.1:80' });
    expect(a.rec.events).toEqual([{ type: 'master', token: record!.token }]);
    expect(a.election.state).toEqual({
      role: 'master',
      master: '10.0.0.1:80',
      term: record!.token,
    });
    expect(a.election.fencingToken).toBe(record!.token);
    expect(a.election.getCurrentMaster()).toBe('10.0.0.1:80');
    expect(a.election.currentTerm?.fencingToken).toBe(record!.token);
    expect(a.election.health()).toMatchObject({ healthy: true, role: 'master', connected: true });
  });

  it('where a missing record proves no master is at work, the first election is immediate', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80');
    expect(a.election.isMaster()).toBe(true);
  });

  it('a participant that starts after a master reports becomeSlave(master, token) and does not run', async () => {
    fleet = new Fleet();
    const a = await fleet.join('10.0.0.1:80');
    await fleet.advance(TIMING.leaseMs);
    const writes = fleet.store.stats(NAME).writes;
    const b = await fleet.join('10.0.0.2:80');
    expect(b.rec.events).toEqual([{ type: 'slave', master: '10.0.0.1:80' }]);
    expect(b.rec.slaveTokens).toEqual([a.election.fencingToken]);
    expect(b.election.state).toEqual({
      role: 'slave',
      master: '10.0.0.1:80',
      term: a.election.fencingToken,
    });
    expect(b.election.isMaster()).toBe(false);
    expect(fleet.store.stats(NAME).writes).toBe(writes);
  });

  it('20 participants starting together elect exactly one master, with one winning create', async () => {
    fleet = new Fleet();
    const all = await Promise.all(
      Array.from({ length: 20 }, (_, i) => fleet.join(`10.0.1.${i}:80`, { electionJitterMs: 50 })),
    );
    await fleet.run(TIMING.leaseMs + 100, 10);
    const masters = fleet.masters();
    expect(masters).toHaveLength(1);
    const winner = masters[0]!.election.address;
    expect(fleet.store.peek(NAME)?.holder).toBe(winner);
    for (const p of all) {
      if (p === masters[0]) continue;
      expect(p.rec.count('master')).toBe(0);
      expect(p.rec.slaves()).toEqual([winner]);
    }
    // Jitter spreads the creates: far fewer writes than participants.
    const { writes, conflicts } = fleet.store.stats(NAME);
    expect(writes - conflicts).toBeGreaterThanOrEqual(1);
    expect(writes).toBeLessThan(20);
  });

  it('a passive participant never writes, follows masters, and stays slave without one', async () => {
    fleet = new Fleet();
    const p = await fleet.join('10.0.0.9:80', { participating: false });
    expect(p.election.state).toEqual({ role: 'slave', master: '', term: 0 });
    await fleet.run(TIMING.leaseMs * 3, 1000);
    expect(fleet.store.peek(NAME)).toBeNull();
    expect(fleet.store.stats(NAME).writes).toBe(0);
    const a = await fleet.join('10.0.0.1:80');
    await fleet.advance(TIMING.leaseMs);
    expect(a.election.isMaster()).toBe(true);
    expect(p.rec.slaves()).toEqual(['10.0.0.1:80']);
    expect(p.election.state.role).toBe('slave');
  });

  it('checks the name (through the store), the address and the timing before anything is written', async () => {
    fleet = new Fleet();
    const cases = [
      ['name', { name: '' }],
      ['address', {}],
      ['renewDeadlineMs', { leaseMs: 1000, renewDeadlineMs: 1000 }],
      ['retryPeriodMs', { leaseMs: 1000, renewDeadlineMs: 500, retryPeriodMs: 600 }],
      ['leaseMs', { leaseMs: -1 }],
      ['leaseMs', { leaseMs: 2 ** 31 }],
      ['electionJitterMs', { electionJitterMs: 5000 }],
    ] as const;
    for (const [option, bad] of cases) {
      const address = option === 'address' ? 'no-port' : '10.0.0.1:80';
      const err = await fleet
        .join(address, { ...TIMING, ...bad, noStart: true })
        .catch((e: unknown) => e);
      expect(err, option).toBeInstanceOf(ElectionConfigError);
      expect((err as ElectionConfigError).option).toBe(option);
    }
    expect(fleet.store.stats(NAME)).toEqual({ reads: 0, writes: 0, conflicts: 0 });
  });
});

describe('engine: renewals and the renew deadline', () => {
  it('the master renews every retryPeriodMs; each success extends its deadline from the renewal start', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80');
    const term = a.election.currentTerm!;
    const first = term.deadline;
    const token = fleet.store.peek(NAME)!.token;
    for (let i = 1; i <= 3; i++) {
      const writes = fleet.store.stats(NAME).writes;
      await fleet.advance(TIMING.retryPeriodMs - 1);
      expect(fleet.store.stats(NAME).writes).toBe(writes);
      await fleet.advance(1);
      expect(fleet.store.stats(NAME).writes).toBe(writes + 1);
      expect(term.deadline).toBe(first + i * TIMING.retryPeriodMs);
      expect(fleet.store.peek(NAME)).toMatchObject({ state: 'held', token });
    }
    expect(a.election.isMaster()).toBe(true);
    expect(a.rec.events).toHaveLength(1);
  });

  it('a master past its deadline answers false at once; getters have no side effects; the runner steps it down', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80');
    const term = a.election.currentTerm!;
    fleet.store.pause(); // renewals get no answer
    a.clock.advance(TIMING.retryPeriodMs); // a renewal starts and hangs
    expect(a.election.isMaster()).toBe(true);
    // A frozen process wakes after the deadline: time moved, no timer ran yet.
    a.clock.jump(TIMING.renewDeadlineMs);
    expect(a.election.isMaster()).toBe(false);
    expect(term.isValid()).toBe(false);
    expect(a.election.currentTerm).toBeUndefined();
    expect(a.election.state.role).not.toBe('master');
    expect(a.election.getCurrentMaster()).not.toBe('');
    const health = a.election.health();
    expect(health).toMatchObject({ healthy: false, role: 'master' });
    expect(health.reason).toMatch(/stuck/);
    // None of the reads above stepped it down: only the runner does, when its timer runs.
    expect(term.signal.aborted).toBe(false);
    a.clock.advance(0);
    expect(term.signal.aborted).toBe(true);
    expect((term.signal.reason as MasterStepDownError).reason).toBe('renew-deadline');
    fleet.store.resume();
    await fleet.settle();
    expect(a.rec.errors()).toHaveLength(1);
    expect(a.rec.errors()[0]).toBeInstanceOf(MasterStepDownError);
    expect(a.election.health().healthy).toBe(true);
  });

  it('a renewal whose answer was lost is recognised later: the term runs from that renewal', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80');
    const term = a.election.currentTerm!;
    const first = term.deadline;
    fleet.store.loseNextAnswer();
    await fleet.advance(TIMING.retryPeriodMs); // lands, answer lost
    expect(term.deadline).toBe(first);
    // The retry comes within half a retry period and finds attempt 1 in the store.
    await fleet.run(TIMING.retryPeriodMs / 2, 50);
    expect(term.deadline).toBe(first + TIMING.retryPeriodMs);
    expect(a.election.isMaster()).toBe(true);
    expect(a.rec.errors()).toEqual([]);
  });

  it('a master cut off from the store steps down at its deadline; the other deposes it only after a full leaseMs of silence', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80');
    const b = await fleet.join('10.0.0.2:80');
    const token = a.election.fencingToken;
    await fleet.advance(TIMING.retryPeriodMs); // a renewal, seen by B now
    fleet.store.partition(a.election.id);
    await fleet.run(TIMING.renewDeadlineMs - 1, 100);
    expect(a.election.isMaster()).toBe(true);
    // A's deadline: the start of its last good renewal plus renewDeadlineMs.
    await fleet.advance(1);
    expect(a.election.isMaster()).toBe(false);
    expect(a.rec.errors()[0]).toMatchObject({ reason: 'renew-deadline' });
    expect(a.election.health()).toMatchObject({ healthy: false, connected: false });
    await fleet.run(TIMING.leaseMs - TIMING.renewDeadlineMs - 1, 100);
    expect(b.election.isMaster()).toBe(false);
    await fleet.advance(1);
    expect(b.election.isMaster()).toBe(true);
    expect(b.election.fencingToken).toBeGreaterThan(token);
  });
});

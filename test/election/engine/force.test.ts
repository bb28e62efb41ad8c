/**
 * forceMasterElection() from a client that is not master, when the record
 * moves on between what it saw and its depose: a renewal of the same term
 * is deposed again; another term (or a release) means the election already
 * happened. The result says which.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Fleet, NAME, TIMING, reason } from './harness.js';

let fleet: Fleet;

afterEach(async () => {
  fleet.store.resume();
  await fleet.close();
});

describe('engine: forceMasterElection() racing the master', () => {
  it('a renewal landing before the depose is deposed again at its new version', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80');
    const p = await fleet.join('10.0.0.9:80', { participating: false });
    const term = a.election.currentTerm!;
    const seen = p.election.diagnostics().versionKey;
    // The store stops answering; A's renewal is sent first, then P's depose.
    fleet.store.pause();
    await fleet.advance(TIMING.retryPeriodMs);
    const forcing = p.election.forceMasterElection();
    await fleet.settle();
    fleet.store.resume();
    const forced = await forcing;
    // A's term was ended, though a renewal moved its record on before the first depose.
    expect(fleet.store.peek(NAME)).toMatchObject({ state: 'ended', token: term.fencingToken });
    expect(forced).toBe('deposed');
    // P's first depose found the renewal; its second ended the same term.
    const conflicts = fleet.store.stats(NAME).conflicts;
    expect(conflicts).toBe(1);
    await fleet.settle();
    expect(p.election.diagnostics().versionKey).not.toBe(seen);
    expect(reason(term)).toBe('election-changed');
    // A, the only participant, wins the new term.
    expect(a.election.isMaster()).toBe(true);
    expect(a.election.fencingToken).toBeGreaterThan(term.fencingToken);
    expect(p.rec.slaveTokens).toEqual([term.fencingToken, a.election.fencingToken]);
  });

  it('a term that ended meanwhile is not forced again: the result says a new election happened', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const a = await fleet.join('10.0.0.1:80');
    const b = await fleet.join('10.0.0.2:80');
    const p = await fleet.join('10.0.0.9:80', { participating: false });
    const term = a.election.currentTerm!;
    // A resigns (its release is sent first), then P forces an election.
    fleet.store.pause();
    const resigning = a.election.resign();
    await fleet.settle();
    const forcing = p.election.forceMasterElection();
    await fleet.settle();
    fleet.store.resume();
    expect(await forcing).toBe('superseded');
    await resigning;
    await fleet.settle();
    // B took over from the release; P did not end B's term.
    expect(b.election.isMaster()).toBe(true);
    expect(b.election.fencingToken).toBeGreaterThan(term.fencingToken);
    expect(fleet.store.peek(NAME)).toMatchObject({ state: 'held', holder: '10.0.0.2:80' });
  });

  it('says when there was nothing to force, or when it stepped down itself', async () => {
    fleet = new Fleet();
    const p = await fleet.join('10.0.0.9:80', { participating: false });
    expect(await p.election.forceMasterElection()).toBe('no-master');
    expect(fleet.store.stats(NAME).writes).toBe(0);
    const a = await fleet.join('10.0.0.1:80');
    await fleet.advance(TIMING.leaseMs);
    expect(a.election.isMaster()).toBe(true);
    expect(await a.election.forceMasterElection()).toBe('stepped-down');
  });
});

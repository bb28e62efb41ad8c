/**
 * Records older than our own term, taken in after our create landed: the
 * watch events held back while the create was in flight are replayed once
 * it is won. They must not be reported (no `becomeSlave` after our
 * `becomeMaster`) nor replace what the engine knows.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Fleet, NAME } from './harness.js';

let fleet: Fleet;

afterEach(async () => {
  await fleet.close();
});

describe('engine: records from before our term', () => {
  it('a term begun and ended while our create was in flight is not reported after we win', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const c = await fleet.join('10.0.0.3:80');
    const b = await fleet.join('10.0.0.2:80');
    expect(b.rec.slaves()).toEqual(['10.0.0.3:80']);
    // B's run for master will be slow: it waits before it reaches the store.
    const letGo = fleet.store.holdNextWrite(b.election.id);
    await c.election.close(); // C gives its term back; B runs (its create is held)
    await fleet.settle();
    expect(b.election.diagnostics().phase).toBe('campaigning');
    // Meanwhile D comes, wins a term, and gives it back: B's watch shows both while B campaigns.
    const d = await fleet.join('10.0.0.4:80');
    const dToken = d.election.fencingToken;
    expect(d.election.isMaster()).toBe(true);
    await d.election.close();
    await fleet.settle();
    expect(fleet.store.peek(NAME)).toMatchObject({ state: 'released', token: dToken });
    // B's create lands on the released record and wins a newer term.
    const states: string[] = [];
    const sub = b.election.state$.subscribe((s) => states.push(`${s.role}:${s.term}`));
    letGo();
    await fleet.settle();
    sub.unsubscribe();
    expect(b.election.isMaster()).toBe(true);
    const token = b.election.fencingToken;
    expect(token).toBeGreaterThan(dToken);
    // D's term (older than B's) was never reported to B as its master.
    expect(b.rec.events).toEqual([
      { type: 'slave', master: '10.0.0.3:80' },
      { type: 'master', token },
    ]);
    expect(b.rec.slaveTokens.every((t) => t < dToken)).toBe(true);
    // Its view never went back to D's term.
    expect(states.filter((s) => s.endsWith(`:${dToken}`))).toEqual([]);
    expect(states.at(-1)).toBe(`master:${token}`);
    expect(b.election.diagnostics().record).toMatchObject({ state: 'held', token });
    expect(b.election.state).toEqual({ role: 'master', master: '10.0.0.2:80', term: token });
  });
});

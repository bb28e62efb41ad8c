/**
 * The engine's bound on `becomeMaster` (`becomeMasterTimeoutMs`, issue 17):
 * a callback whose promise has not settled in time is reported, its term is
 * given up so another participant takes over, and this participant sits out
 * until the callback settles (docs/election-protocol.md, "A stuck
 * becomeMaster"). On the in-memory store, on manual clocks.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  BecomeMasterTimeoutError,
  ElectionConfigError,
  MasterElection,
  resolveElectionOptions,
  type ElectionLogger,
  type MasterTerm,
} from '../../../lib/election/index.js';
import { MemoryElectionStore } from '../../../lib/testing/memory-store.js';
import { Fleet, NAME, TIMING, reason, type Member } from './harness.js';

let fleet: Fleet;

afterEach(async () => {
  await fleet.close();
});

/** The default bound: `renewDeadlineMs`. */
const BOUND = TIMING.renewDeadlineMs;

/** A `becomeMaster` that records the term and returns a promise the test settles (or never does). */
function pending(): {
  becomeMaster: (t: MasterTerm) => Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
  terms: MasterTerm[];
} {
  const terms: MasterTerm[] = [];
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return {
    becomeMaster: (t) => {
      terms.push(t);
      return promise;
    },
    resolve: () => resolve(),
    reject: (err) => reject(err),
    terms,
  };
}

/** A logger that keeps the warnings. */
function warnings(): { logger: ElectionLogger; warns: string[] } {
  const warns: string[] = [];
  return { logger: { log: () => {}, warn: (m) => warns.push(m), error: () => {} }, warns };
}

/** Closes `m`, moving its clock 100 ms at a time; returns the clock time the close took. */
async function closeTimed(m: Member): Promise<number> {
  const start = m.clock.now();
  let done = false;
  const closing = m.election.close().then(() => (done = true));
  for (let i = 0; i < 200 && !done; i++) await fleet.advance(100, m.clock);
  await closing;
  return m.clock.now() - start;
}

describe('engine: becomeMaster is bounded by becomeMasterTimeoutMs', () => {
  it('a becomeMaster that never settles: at the bound the term is given up, another participant takes over, health says why', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const stuck = pending();
    const a = await fleet.join('10.0.0.1:80', { receiver: { becomeMaster: stuck.becomeMaster } });
    const b = await fleet.join('10.0.0.2:80');
    expect(a.election.isMaster()).toBe(true);
    const [term] = stuck.terms;
    expect(term).toBeDefined();

    // Within the bound the term is renewed as usual.
    await fleet.run(BOUND - 1, 500);
    expect(a.election.isMaster()).toBe(true);
    expect(a.election.health()).toMatchObject({ healthy: true, role: 'master' });
    expect(a.rec.errors()).toEqual([]);
    expect(b.election.isMaster()).toBe(false);

    await fleet.advance(1);
    // Given up at the bound, released: B takes over at once (well within bound + lease).
    expect(term!.signal.aborted).toBe(true);
    expect(reason(term!)).toBe('become-master-timeout');
    expect(a.election.isMaster()).toBe(false);
    expect(b.election.isMaster()).toBe(true);
    expect(fleet.store.peek(NAME)).toMatchObject({ state: 'held', holder: '10.0.0.2:80' });
    expect(b.election.fencingToken).toBeGreaterThan(term!.fencingToken);
    // Reported through electionError, and the notifications go on (A hears of B).
    const [err] = a.rec.errors();
    expect(err).toBeInstanceOf(BecomeMasterTimeoutError);
    expect(err).toMatchObject({ timeoutMs: BOUND, fencingToken: term!.fencingToken });
    expect(err!.message).toContain('becomeMasterTimeoutMs');
    expect(a.rec.slaves()).toEqual(['10.0.0.2:80']);
    const health = a.election.health();
    expect(health).toMatchObject({ healthy: false, role: 'slave', master: '10.0.0.2:80' });
    expect(health.reason).toMatch(/becomeMaster of term \d+ still running \d+ ms past/);
    expect(health.reason).toContain('becomeMasterTimeoutMs');

    // While the call runs, A sits out: B resigns, and A does not run for master.
    await b.election.resign();
    await fleet.run(TIMING.leaseMs * 3, 500);
    expect(stuck.terms).toHaveLength(1);
    expect(a.election.isMaster()).toBe(false);
    expect(b.election.isMaster()).toBe(true); // its own sit-out after resign() has passed
    expect(a.election.health().healthy).toBe(false);

    // close() stays bounded although the call never settles.
    expect(await closeTimed(a)).toBeLessThanOrEqual(TIMING.renewDeadlineMs);
    expect(a.election.state.role).toBe('stopped');
  });

  it('close() during a becomeMaster still within its bound is bounded, and reports no overrun', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const stuck = pending();
    const a = await fleet.join('10.0.0.1:80', { receiver: { becomeMaster: stuck.becomeMaster } });
    await fleet.run(BOUND / 2, 500);
    expect(await closeTimed(a)).toBeLessThanOrEqual(TIMING.renewDeadlineMs);
    expect(stuck.terms[0]!.signal.aborted).toBe(true);
    expect(reason(stuck.terms[0]!)).toBe('resigned');
    expect(fleet.store.peek(NAME)?.state).toBe('released');
    expect(a.rec.errors()).toEqual([]);
  });

  it('a becomeMaster that settles just before the bound keeps its term', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const slow = pending();
    const log = warnings();
    const a = await fleet.join('10.0.0.1:80', {
      receiver: { becomeMaster: slow.becomeMaster },
      logger: log.logger,
    });
    const b = await fleet.join('10.0.0.2:80');
    const token = a.election.fencingToken;
    await fleet.run(BOUND - 1, 500);
    slow.resolve();
    await fleet.settle();
    await fleet.run(TIMING.leaseMs * 3, 500);
    expect(a.election.isMaster()).toBe(true);
    expect(a.election.fencingToken).toBe(token);
    expect(slow.terms[0]!.signal.aborted).toBe(false);
    expect(a.election.health()).toMatchObject({ healthy: true, role: 'master' });
    expect(a.rec.errors()).toEqual([]);
    expect(log.warns).toEqual([]);
    expect(b.election.isMaster()).toBe(false);
    expect(b.rec.slaves()).toEqual(['10.0.0.1:80']);
  });

  it('once the overdue becomeMaster settles, the participant takes part again', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const first = pending();
    const log = warnings();
    let calls = 0;
    const a = await fleet.join('10.0.0.1:80', {
      receiver: {
        becomeMaster: (t) => (++calls === 1 ? first.becomeMaster(t) : undefined),
      },
      logger: log.logger,
    });
    const b = await fleet.join('10.0.0.2:80');
    await fleet.run(BOUND, 500);
    expect(b.election.isMaster()).toBe(true);
    expect(a.election.health().healthy).toBe(false);

    await fleet.run(1000, 500);
    first.reject(new Error('gave up late'));
    await fleet.settle();
    expect(log.warns.some((w) => /failed 1000 ms after its bound.*gave up late/.test(w))).toBe(
      true,
    );
    // Healthy again; the late failure is logged, not reported as a second error.
    expect(a.election.health()).toMatchObject({ healthy: true, role: 'slave' });
    expect(a.rec.errors()).toHaveLength(1);

    // A newer term (B's) has begun: no further sit-out, A takes over at B's resignation.
    await b.election.resign();
    await fleet.settle();
    expect(a.election.isMaster()).toBe(true);
    expect(calls).toBe(2);
    expect(a.election.health()).toMatchObject({ healthy: true, role: 'master' });
  });

  it('after a settled overrun with no newer term, sits out the rest of leaseMs from the bound', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const first = pending();
    let calls = 0;
    const a = await fleet.join('10.0.0.1:80', {
      receiver: { becomeMaster: (t) => (++calls === 1 ? first.becomeMaster(t) : undefined) },
    });
    await fleet.run(BOUND, 500);
    expect(a.election.isMaster()).toBe(false);
    expect(fleet.store.peek(NAME)?.state).toBe('released');
    first.resolve();
    await fleet.run(TIMING.leaseMs - 100, 100);
    expect(a.election.isMaster()).toBe(false);
    expect(a.election.health().healthy).toBe(true);
    await fleet.run(100, 100);
    expect(a.election.isMaster()).toBe(true);
    expect(calls).toBe(2);
  });

  it('a bound of its own applies, also one longer than the renew deadline', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const slow = pending();
    const a = await fleet.join('10.0.0.1:80', {
      receiver: { becomeMaster: slow.becomeMaster },
      becomeMasterTimeoutMs: 15_000,
    });
    const b = await fleet.join('10.0.0.2:80');
    await fleet.run(14_999, 500);
    expect(a.election.isMaster()).toBe(true);
    await fleet.advance(1);
    expect(reason(slow.terms[0]!)).toBe('become-master-timeout');
    expect(a.rec.errors()[0]).toMatchObject({ timeoutMs: 15_000 });
    expect(b.election.isMaster()).toBe(true);
  });
});

describe('engine: becomeMasterTimeoutMs option', () => {
  it('defaults to renewDeadlineMs (as the Nest layer does), and keeps a value given', () => {
    expect(resolveElectionOptions({}).becomeMasterTimeoutMs).toBe(7_000);
    expect(resolveElectionOptions({ leaseMs: 1_000 }).becomeMasterTimeoutMs).toBe(700);
    expect(
      resolveElectionOptions({ leaseMs: 3_000, renewDeadlineMs: 2_000 }).becomeMasterTimeoutMs,
    ).toBe(2_000);
    expect(resolveElectionOptions({ becomeMasterTimeoutMs: 60_000 }).becomeMasterTimeoutMs).toBe(
      60_000,
    );
  });

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '500', null])(
    'refuses %s with an ElectionConfigError naming the option, before anything is written',
    async (bad) => {
      fleet = new Fleet();
      const store = new MemoryElectionStore({ clock: fleet.clock });
      const opened = MasterElection.open(store, {
        name: NAME,
        address: '10.0.0.1:80',
        becomeMasterTimeoutMs: bad as number,
      });
      await expect(opened).rejects.toBeInstanceOf(ElectionConfigError);
      await expect(opened).rejects.toMatchObject({ option: 'becomeMasterTimeoutMs' });
      await expect(opened).rejects.toThrow(/^becomeMasterTimeoutMs: must be/);
      expect(store.peek(NAME)).toBeNull();
    },
  );
});

/**
 * The engine on the in-memory store under faults: a store that loses its
 * state, watches that reset, failed writes, hung handlers, a close in the
 * middle of an election, and a seeded storm of faults that must never leave
 * two masters at once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { rng } from '../../support/random.js';
import { Fleet, NAME, TIMING, reason, type Member } from './harness.js';

let fleet: Fleet;

afterEach(async () => {
  await fleet.close();
});

describe('engine: store faults', () => {
  it('a store that loses its state ends every term at once; the missing record is then waited out', async () => {
    fleet = new Fleet();
    const a = await fleet.join('10.0.0.1:80');
    const b = await fleet.join('10.0.0.2:80');
    await fleet.advance(TIMING.leaseMs);
    const master = fleet.masters()[0]!;
    const term = master.election.currentTerm!;
    fleet.store.reset({ loseState: true });
    await fleet.settle();
    expect(reason(term)).toBe('store-reset');
    expect(master.rec.errors()).toHaveLength(1);
    expect(fleet.store.peek(NAME)).toBeNull(); // no give-back into the new store
    expect([a, b].filter((m) => m.election.isMaster())).toHaveLength(0);
    await fleet.run(TIMING.leaseMs - 100, 100);
    expect(fleet.masters()).toHaveLength(0);
    await fleet.run(100, 10);
    expect(fleet.masters()).toHaveLength(1);
  });

  it('a watch reset without loss of state resynchronises; the master keeps its term', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const warnings: string[] = [];
    const logger = { log: () => {}, warn: (m: string) => void warnings.push(m), error: () => {} };
    const a = await fleet.join('10.0.0.1:80', { logger });
    const b = await fleet.join('10.0.0.2:80');
    const term = a.election.currentTerm!;
    fleet.store.reset();
    await fleet.settle();
    expect(warnings.some((w) => /watch was reset \(reset\)/.test(w))).toBe(true);
    expect(term.signal.aborted).toBe(false);
    await fleet.run(TIMING.leaseMs * 2, 500);
    expect(a.election.isMaster()).toBe(true);
    expect(b.election.isMaster()).toBe(false);
    expect(a.election.health().healthy && b.election.health().healthy).toBe(true);
    expect(b.rec.slaves()).toEqual(['10.0.0.1:80']); // the same term is not reported twice
  });

  it('a failed create is retried after a backoff; a fatal error stops the election with electionFatal', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    fleet.store.failNextWrite('transient');
    const a = await fleet.join('10.0.0.1:80');
    expect(a.election.isMaster()).toBe(false);
    expect(a.rec.errors()).toEqual([]);
    await fleet.run(TIMING.retryPeriodMs / 2, 50);
    expect(a.election.isMaster()).toBe(true);
    const term = a.election.currentTerm!;
    fleet.store.failNextWrite('fatal');
    await fleet.advance(TIMING.retryPeriodMs);
    expect(a.rec.count('fatal')).toBe(1);
    expect(reason(term)).toBe('fatal');
    await a.election.syncWait();
    expect(a.election.state.role).toBe('stopped');
  });

  it('a won term that cannot be announced (a handler hangs) is not renewed: it ends at its deadline and another takes over', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const p1 = await fleet.join('10.0.0.1:80');
    let release!: () => void;
    const hung = new Promise<void>((r) => (release = r));
    const p2 = await fleet.join('10.0.0.2:80', { receiver: { becomeSlave: () => hung } });
    const p3 = await fleet.join('10.0.0.3:80', { electionJitterMs: 1000 });
    await p1.election.resign();
    await fleet.settle(); // p2 (no jitter) wins the released record first
    expect(fleet.store.peek(NAME)?.holder).toBe('10.0.0.2:80');
    expect(p2.election.isMaster()).toBe(false);
    expect(p2.election.state.role).toBe('candidate');
    expect(p2.election.getCurrentMaster()).toBe('');
    const writes = fleet.store.stats(NAME).writes;
    await fleet.run(TIMING.retryPeriodMs, 100);
    expect(p2.election.health().reason).toMatch(/becomeMaster waits/);
    await fleet.run(TIMING.renewDeadlineMs - TIMING.retryPeriodMs, 100);
    // Not renewed; at its deadline the term ends and is given back.
    const masters = fleet.masters();
    expect(masters).toHaveLength(1);
    expect(masters[0]).not.toBe(p2);
    expect([p1, p3]).toContain(masters[0]);
    expect(fleet.store.stats(NAME).writes - writes).toBeLessThanOrEqual(3); // release + create (+ a lost race)
    release();
    await fleet.settle();
    expect(p2.rec.count('master')).toBe(0);
    expect(p2.rec.errors()).toEqual([]);
  });

  it('close() while a create is in flight gives back what it won', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    fleet.store.pause();
    const a = await fleet.join('10.0.0.1:80', { noStart: true });
    const starting = a.election.start();
    await fleet.settle();
    fleet.store.resume();
    await starting;
    fleet.store.pause(); // the create now waits in the store
    await fleet.settle();
    const closing = a.election.close();
    fleet.store.resume();
    await closing;
    await fleet.settle();
    expect(a.rec.count('master')).toBe(0);
    const r = fleet.store.peek(NAME);
    expect(r === null || r.state === 'released').toBe(true);
    expect(a.clock.pending).toBe(0);
  });

  it('readCurrentMaster() reads the store and leaves what the client knows as it was', async () => {
    fleet = new Fleet({ absentProvesNoMaster: true });
    const p = await fleet.join('10.0.0.9:80', { participating: false });
    fleet.store.dropNextChanges(1);
    const a = await fleet.join('10.0.0.1:80');
    expect(a.election.isMaster()).toBe(true);
    const before = p.election.state;
    expect(await p.election.readCurrentMaster()).toBe('10.0.0.1:80');
    expect(p.election.state).toEqual(before);
    expect(p.election.getCurrentMaster()).toBe('');
    expect(p.rec.events).toEqual([]);
  });
});

describe('engine: safety under a storm of faults', () => {
  const seeds = (process.env['ENGINE_SEEDS'] ?? '1,2,3,4,5').split(',').map(Number);

  it.each(seeds)(
    'seed %i: never two masters at once, and a master again once the faults stop',
    async (seed) => {
      const random = rng(seed);
      fleet = new Fleet();
      const members: Member[] = [];
      for (let i = 0; i < 4; i++) {
        members.push(await fleet.join(`10.0.2.${i}:80`, { electionJitterMs: 30 }));
      }
      const passive = await fleet.join('10.0.2.99:80', { participating: false });
      const cut = new Set<string>();
      for (let step = 0; step < 400; step++) {
        const x = random();
        const m = members[Math.floor(random() * members.length)]!;
        if (x < 0.03) {
          fleet.store.partition(m.election.id);
          cut.add(m.election.id);
        } else if (x < 0.08 && cut.size > 0) {
          for (const id of cut) fleet.store.heal(id);
          cut.clear();
        } else if (x < 0.1) fleet.store.dropNextChanges(1);
        else if (x < 0.12) fleet.store.loseNextAnswer();
        else if (x < 0.14) fleet.store.failNextWrite('transient');
        else if (x < 0.145) fleet.store.reset();
        else if (x < 0.15) fleet.store.reset({ loseState: true });
        else if (x < 0.16) void (fleet.masters()[0] ?? m).election.resign();
        else if (x < 0.17) void passive.election.forceMasterElection().catch(() => {});
        else if (x < 0.18)
          void (fleet.masters()[0] ?? m).election.forceMasterElection().catch(() => {});
        await fleet.advance(Math.floor(random() * 700));
        const masters = members.filter((p) => p.election.isMaster());
        expect(masters.length, `step ${step}`).toBeLessThanOrEqual(1);
      }
      for (const id of cut) fleet.store.heal(id);
      await fleet.run(3 * TIMING.leaseMs, 200);
      expect(members.filter((p) => p.election.isMaster())).toHaveLength(1);
      // The storm did move the election around (the test is not vacuous).
      expect(members.flatMap((p) => p.rec.terms).length).toBeGreaterThanOrEqual(3);
    },
  );
});

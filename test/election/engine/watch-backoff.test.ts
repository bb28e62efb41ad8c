/**
 * A store whose watches keep failing at once (a stream that errors as soon
 * as it opens) must not be read in a tight loop: the follower backs off
 * like a failing read, and follows normally once watches work again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Fleet, NAME, TIMING } from './harness.js';

let fleet: Fleet;

afterEach(async () => {
  await fleet.close();
});

describe('a watch that fails as soon as it starts', () => {
  it('is followed again with backoff, not in a tight loop, and recovers', async () => {
    fleet = new Fleet();
    await fleet.join('a:1');
    await fleet.join('b:2');
    await fleet.run(TIMING.leaseMs + 1000);
    const master = fleet.masters()[0]!;
    expect(fleet.masters()).toHaveLength(1);
    const before = fleet.store.stats(NAME).reads;

    fleet.store.resetEveryWatch(true);
    await fleet.settle();
    // Two short watches each: the first resyncs at once, the second waits.
    expect(fleet.store.stats(NAME).reads - before).toBeLessThanOrEqual(4);

    await fleet.run(10_000);
    const failing = fleet.store.stats(NAME).reads - before;
    // Backoff from 100 ms doubling to retryPeriodMs (2000): about 9 reads each in 10 s.
    expect(failing).toBeGreaterThan(4);
    expect(failing).toBeLessThanOrEqual(2 * 12);
    expect(master.election.health()).toMatchObject({ healthy: false });
    // Renewals do not depend on the watch: the master keeps its term.
    expect(master.election.isMaster()).toBe(true);

    fleet.store.resetEveryWatch(false);
    await fleet.run(TIMING.retryPeriodMs * 2);
    const recovered = fleet.store.stats(NAME).reads;
    await fleet.run(10_000);
    // Watches live again: no more reads than the periodic ones of a healthy follower.
    expect(fleet.store.stats(NAME).reads - recovered).toBeLessThanOrEqual(2 * 6);
    for (const m of fleet.members) expect(m.election.health().healthy).toBe(true);
    expect(master.election.isMaster()).toBe(true);
  });
});

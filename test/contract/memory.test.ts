import { describe, expect, it } from 'vitest';
import { systemClock } from '../../lib/election/clock.js';
import type { LockRequest } from '../../lib/election/port.js';
import { ManualClock } from '../../lib/testing/manual-clock.js';
import { MemoryElectionStore, MemoryStoreError } from '../../lib/testing/memory-store.js';
import { lockContract } from './lock-contract.js';

for (const expiry of ['observer', 'store'] as const) {
  lockContract(`memory (${expiry} expiry)`, () => {
    const store = new MemoryElectionStore({ expiry });
    return Promise.resolve({
      connect: () => Promise.resolve(store),
      forceReset: () => Promise.resolve(store.reset()),
      teardown: () => Promise.resolve(),
    });
  });
}

const CALL = { timeoutMs: 1000 };
const req = (name: string, address: string, clock = systemClock): LockRequest => ({
  name,
  address,
  participating: true,
  timing: { leaseMs: 1000, renewDeadlineMs: 700, retryPeriodMs: 200 },
  clock,
  logger: { log: () => {}, warn: () => {}, error: () => {} },
});

describe('memory store faults', () => {
  it('failNextWrite fails one write without effect; loseNextAnswer lands the write but loses its answer', async () => {
    const store = new MemoryElectionStore();
    const lock = await store.openLock(req('f', '127.0.0.1:1'));
    const { version } = await lock.read(CALL);
    store.failNextWrite('transient');
    const err = await lock.create(version, CALL).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MemoryStoreError);
    expect(lock.classify(err)).toBe('transient');
    expect(store.peek('f')).toBeNull();
    store.loseNextAnswer();
    await expect(lock.create(version, CALL)).rejects.toBeInstanceOf(MemoryStoreError);
    const held = store.peek('f');
    expect(held).toMatchObject({ state: 'held', holderId: lock.id });
    expect(store.stats('f').writes).toBe(2);
  });

  it('a lost renewal answer is recognised as our own write on the next renewal', async () => {
    const store = new MemoryElectionStore();
    const lock = await store.openLock(req('late', '127.0.0.1:1'));
    const created = await lock.create((await lock.read(CALL)).version, CALL);
    if (created.kind !== 'won') throw new Error('not won');
    store.loseNextAnswer();
    await expect(lock.renew(created.term, 1, CALL)).rejects.toBeInstanceOf(MemoryStoreError);
    const again = await lock.renew(created.term, 2, CALL);
    expect(again).toMatchObject({ kind: 'renewed', attempt: 1 });
  });

  it('pause holds operations until resume; partition cuts one lock off', async () => {
    const store = new MemoryElectionStore();
    const a = await store.openLock(req('p', '127.0.0.1:1'));
    const b = await store.openLock(req('p', '127.0.0.1:2'));
    store.pause();
    let done = false;
    const reading = a.read(CALL).then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    store.resume();
    await reading;
    expect(done).toBe(true);
    store.partition(a.id);
    expect(a.status().connected).toBe(false);
    let aDone = false;
    void a.read(CALL).then(() => (aDone = true));
    await b.read(CALL);
    await new Promise((r) => setImmediate(r));
    expect(aDone).toBe(false);
    store.heal(a.id);
    await new Promise((r) => setImmediate(r));
    expect(aDone).toBe(true);
  });

  it('reset with loseState reports stateLost on the next read and restarts tokens', async () => {
    const store = new MemoryElectionStore();
    const lock = await store.openLock(req('r', '127.0.0.1:1'));
    const first = await lock.read(CALL);
    expect(first.stateLost).toBe(false);
    const won = await lock.create(first.version, CALL);
    if (won.kind !== 'won') throw new Error('not won');
    store.reset({ loseState: true });
    const after = await lock.read(CALL);
    expect(after.stateLost).toBe(true);
    expect(after.record).toBeNull();
    expect(after.liveness).not.toBe(first.liveness);
    // An old version is refused as a basis: the store it names is gone.
    expect((await lock.create(first.version, CALL)).kind).toBe('lost');
    expect((await lock.renew(won.term, 1, CALL)).kind).toBe('lost');
  });

  it('dropped changes are not delivered, but the next change shows the latest record', async () => {
    const store = new MemoryElectionStore();
    const a = await store.openLock(req('d', '127.0.0.1:1'));
    const b = await store.openLock(req('d', '127.0.0.1:2'));
    const base = await b.read(CALL);
    const abort = new AbortController();
    const iter = b.watch(base.version, abort.signal)[Symbol.asyncIterator]();
    let got = false;
    const next = iter.next().then((r) => ((got = true), r));
    await new Promise((r) => setImmediate(r));
    store.dropNextChanges(1);
    const won = await a.create(base.version, CALL);
    if (won.kind !== 'won') throw new Error('not won');
    await new Promise((r) => setImmediate(r));
    expect(got).toBe(false);
    await a.renew(won.term, 1, CALL);
    const ev: unknown = (await next).value;
    expect(ev).toMatchObject({ kind: 'change', snapshot: { record: { termId: won.term.termId } } });
    abort.abort();
  });

  it('store expiry ends a silent holder on the store clock', async () => {
    const clock = new ManualClock();
    const store = new MemoryElectionStore({ expiry: 'store', clock });
    const lock = await store.openLock(req('x', '127.0.0.1:1', clock));
    expect(lock.capabilities).toEqual({ expiry: 'store', absentProvesNoMaster: true });
    const won = await lock.create((await lock.read(CALL)).version, CALL);
    if (won.kind !== 'won') throw new Error('not won');
    clock.advance(999);
    expect(store.peek('x')?.state).toBe('held');
    clock.advance(1);
    expect(store.peek('x')).toBeNull();
  });
});

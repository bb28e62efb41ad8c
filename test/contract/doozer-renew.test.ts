/**
 * How a Doozer renewal checks that its term still holds the election file:
 * from what the lock's own running watch has seen of it (one request, the
 * lease SET), or by a read when no watch vouches for it; and why a delete
 * the watch has not delivered yet is still safe (the lease compare-and-set,
 * and the liveness a renewal moves). See docs/backends/doozer.md.
 */
import { describe, expect, it } from 'vitest';
import type { ElectionLock, LockTerm } from '../../lib/index.js';
import { CALL, E, L, doozerFixture, nextChange, win } from './doozer-fixture.js';

describe('Doozer lock: a renewal checks the election file from its own watch', () => {
  const fx = doozerFixture();

  /** Server requests made by `f`. */
  async function requests<T>(f: () => Promise<T>): Promise<{ value: T; requests: number }> {
    const before = fx.server.stats().requests;
    const value = await f();
    return { value, requests: fx.server.stats().requests - before };
  }

  async function renewed(lock: ElectionLock, term: LockTerm, attempt: number): Promise<LockTerm> {
    const r = await lock.renew(term, attempt, CALL);
    if (r.kind !== 'renewed') throw new Error(`expected renewed, got ${r.kind}`);
    return r.term;
  }

  it('reads the election file when no watch runs, and skips the read while its watch shows the term', async () => {
    const a = await fx.open('one', '10.0.0.1:80');
    const term = await win(a);
    // No watch: a read of the election file, then the lease SET.
    const first = await requests(() => a.renew(term, 1, CALL));
    expect(first.value.kind).toBe('renewed');
    expect(first.requests).toBe(2);
    if (first.value.kind !== 'renewed') return;
    // A watch from the term's first version shows the renewal (the watch is
    // then parked after its event: it sends nothing while we count).
    const events = fx.follow(a, term.version);
    expect((await nextChange(events)).record).toMatchObject({ state: 'held', holderId: a.id });
    const second = await requests(() =>
      a.renew(first.value.kind === 'renewed' ? first.value.term : term, 2, CALL),
    );
    expect(second.value).toMatchObject({ kind: 'renewed', attempt: 2 });
    expect(second.requests).toBe(1);
    expect((await nextChange(events)).record).toMatchObject({ state: 'held', holderId: a.id });
  });

  it('a term its watch has seen deleted is lost without a request', async () => {
    const a = await fx.open('seen', '10.0.0.1:80');
    const base = await a.read(CALL);
    const term = await win(a);
    const events = fx.follow(a, base.version);
    expect((await nextChange(events)).record).toMatchObject({ state: 'held', token: term.token });
    await fx.raw.del(E('seen'), term.token); // a forced election, as the Go tool makes it
    expect((await nextChange(events)).record).toMatchObject({ state: 'ended', holderId: a.id });
    const lease = await fx.raw.get(L('seen'));
    const r = await requests(() => a.renew(term, 1, CALL));
    expect(r.value).toEqual({ kind: 'lost', holder: '' });
    expect(r.requests).toBe(0);
    expect(await fx.raw.get(L('seen'))).toEqual(lease);
  });

  it('a delete the watch has not delivered lets one renewal through; it moves the liveness, and no candidate can take the lease under it', async () => {
    const a = await fx.open('race', '10.0.0.1:80');
    const b = await fx.open('race', '10.0.0.2:80');
    const base = await a.read(CALL);
    const term = await win(a);
    const events = fx.follow(a, base.version);
    expect((await nextChange(events)).record).toMatchObject({ state: 'held', token: term.token });
    // The watch is parked: the delete is not delivered to it yet.
    await fx.raw.del(E('race'), term.token);
    const ended = await b.read(CALL);
    expect(ended.record).toMatchObject({ state: 'ended', token: term.token });
    const r = await requests(() => a.renew(term, 1, CALL));
    expect(r.value).toMatchObject({ kind: 'renewed', attempt: 1 });
    expect(r.requests).toBe(1);
    // Observers see the renewal as a sign of life: their wait starts again.
    const after = await b.read(CALL);
    expect(after.record).toMatchObject({ state: 'ended', token: term.token });
    expect(after.liveness).not.toBe(ended.liveness);
    // A candidate deciding on what it saw before the renewal cannot take the
    // lease: its compare-and-set is based on the lease rev the renewal moved.
    expect(await b.create(ended.version, CALL)).toEqual({ kind: 'lost' });
    expect((await fx.raw.get(E('race'))).rev).toBe(0);
    // Once the watch delivers the delete, the next renewal is lost and writes nothing.
    expect((await nextChange(events)).record).toMatchObject({ state: 'ended', holderId: a.id });
    const lease = await fx.raw.get(L('race'));
    if (r.value.kind !== 'renewed') return;
    expect(await a.renew(r.value.term, 2, CALL)).toEqual({ kind: 'lost', holder: '' });
    expect(await fx.raw.get(L('race'))).toEqual(lease);
  });

  it('a stopped watch vouches for nothing: the renewal reads again and sees the delete', async () => {
    const a = await fx.open('stopped', '10.0.0.1:80');
    const base = await a.read(CALL);
    const term = await win(a);
    const stop = new AbortController();
    const events = a.watch(base.version, stop.signal)[Symbol.asyncIterator]();
    expect((await nextChange(events)).record).toMatchObject({ state: 'held', token: term.token });
    stop.abort(); // the watch is parked after its event: it has not unwound yet
    await fx.raw.del(E('stopped'), term.token);
    const lease = await fx.raw.get(L('stopped'));
    const r = await requests(() => a.renew(term, 1, CALL));
    expect(r.value).toEqual({ kind: 'lost', holder: '' });
    expect(r.requests).toBe(1); // the read, no write
    expect(await fx.raw.get(L('stopped'))).toEqual(lease);
    expect((await events.next()).done).toBe(true);
  });

  it('a watch that has not caught up with the term it won does not decide: the renewal reads', async () => {
    const a = await fx.open('behind', '10.0.0.1:80');
    const base = await a.read(CALL);
    const events = fx.follow(a, base.version);
    // Another participant's change parks the watch at a rev before our term.
    await fx.raw.set(L('behind'), -1, 'not a lease');
    expect((await nextChange(events)).record).toBeNull();
    const term = await win(a);
    const r = await requests(() => renewed(a, term, 1));
    expect(r.requests).toBe(2);
  });
});

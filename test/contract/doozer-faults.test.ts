/**
 * The Doozer lock under faults on the embedded server: a server restarted
 * empty, lost answers, replaced connections, another server node, a watch
 * that fell behind the history; and secrets that never show.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DoozerClient, DoozerTimeoutError } from '../../lib/doozer/index.js';
import { systemClock } from '../../lib/election/clock.js';
import { parseLease } from '../../lib/election/lease.js';
import { DoozerElectionStore, ElectionConfigError } from '../../lib/index.js';
import { DoozerServer } from '../../lib/testing/index.js';
import { waitFor } from '../support/wait.js';
import { CALL, E, L, SK, TIMING, doozerFixture, nextChange, quiet, win } from './doozer-fixture.js';

describe('Doozer lock: faults', () => {
  const fx = doozerFixture();

  it('a server restarted empty: the next read reports stateLost, old terms and versions are void', async () => {
    const client = await fx.connect();
    const a = await fx.open('lost', '10.0.0.1:80', { client });
    const term = await win(a);
    const old = await a.read(CALL);
    for (let i = 0; i < 100; i++) await fx.raw.set('/pad', -1, String(i)); // far past a fresh server's rev
    const conns = [client.connectionId, fx.raw.connectionId];
    await fx.server.restart();
    await waitFor(
      () =>
        [client, fx.raw].every((c, i) => c.state === 'connected' && c.connectionId !== conns[i]),
      'the clients to reconnect',
    );
    const after = await a.read(CALL);
    expect(after.stateLost).toBe(true);
    expect(after.record).toBeNull();
    expect(after.liveness).not.toBe(old.liveness);
    expect((await a.read(CALL)).stateLost).toBe(false); // reported once
    expect(await a.renew(term, 1, CALL)).toMatchObject({ kind: 'lost' });
    expect(await a.release(term, CALL)).toBe('not-held');
    expect(await a.create(old.version, CALL)).toEqual({ kind: 'lost' });
    expect(await a.depose(old.version, CALL)).toBe('changed');
    const r = await fx.follow(a, old.version).next();
    expect(r.value).toMatchObject({ kind: 'reset' });
    expect(await fx.raw.get(E('lost'))).toMatchObject({ rev: 0 }); // nothing was written
    expect((await win(a)).token).toBeGreaterThan(0);
  });

  it('a renewal whose answer was lost is recognised by its attempt when it lands late', async () => {
    const client = await fx.connect();
    // The real client, except that the server stops answering just before the next SET goes out.
    let pauseOnSet = false;
    const pausing = new Proxy(client, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        if (prop === 'set') {
          return (...args: Parameters<DoozerClient['set']>) => {
            if (pauseOnSet) fx.server.pause();
            pauseOnSet = false;
            return target.set(...args);
          };
        }
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });
    const a = await fx.open('late', '10.0.0.1:80', { client: pausing });
    const term = await win(a);
    const before = await fx.raw.get(L('late'));
    pauseOnSet = true;
    const err = await a.renew(term, 1, { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DoozerTimeoutError);
    expect(a.classify(err)).toBe('transient');
    fx.server.resume(); // the write of attempt 1 lands now, its answer long given up
    await fx.raw.wait(L('late'), before.rev + 1);
    expect(parseLease((await fx.raw.get(L('late'))).text)).toMatchObject({ seq: 1 });
    expect(await a.renew(term, 2, CALL)).toMatchObject({ kind: 'renewed', attempt: 1 });
  });

  it('a term learned on a connection that is gone is confirmed by a read on the new one, which extends nothing', async () => {
    const client = await fx.connect();
    const a = await fx.open('moved', '10.0.0.1:80', { client });
    const term = await win(a);
    const conn = client.connectionId;
    fx.server.dropConnections();
    await waitFor(
      () => client.state === 'connected' && client.connectionId !== conn,
      'a reconnection',
    );
    const held = await a.renew(term, 1, CALL);
    expect(held).toMatchObject({ kind: 'held' });
    if (held.kind !== 'held') return;
    expect(await a.renew(held.term, 2, CALL)).toMatchObject({ kind: 'renewed', attempt: 2 });
  });

  it("a missing lease read from another server node changes the liveness (it may be another store's)", async () => {
    const other = await DoozerServer.start({ heartbeatMs: 0, rwSecret: SK });
    try {
      const pad = await fx.connect(`${other.uri}&sk=${SK}`);
      for (let i = 0; i < 100; i++) await pad.set('/pad', -1, String(i)); // its rev is past the first's
      const client = await fx.connect(
        `doozer:?ca=${fx.server.address}&ca=${other.address}&sk=${SK}`,
        'first',
      );
      const lock = await fx.open('nodes', '127.0.0.1:1', { client });
      const first = await lock.read(CALL);
      expect((await lock.read(CALL)).liveness).toBe(first.liveness);
      await fx.server.stop(); // the client moves to the other node
      await waitFor(
        () => client.state === 'connected' && client.address === other.address,
        'the client to move',
      );
      const moved = await lock.read(CALL);
      expect(client.address).toBe(other.address);
      expect(moved.stateLost).toBe(false);
      expect(moved.record).toBeNull();
      expect(moved.liveness).not.toBe(first.liveness);
    } finally {
      await other.close();
    }
  });

  it('a watch that fell behind the server history ends with a reset (TOO_LATE)', async () => {
    await fx.restartWith({ history: 10 });
    const a = await fx.open('behind', '10.0.0.1:80');
    const events = fx.follow(a, (await a.read(CALL)).version);
    await win(a);
    await nextChange(events); // the consumer then stops reading for a while
    for (let i = 0; i < 30; i++) await fx.raw.set('/pad', -1, String(i));
    const r = await events.next();
    expect(r.value).toMatchObject({
      kind: 'reset',
      reason: expect.stringMatching(/TOO_LATE/) as string,
    });
    expect((await events.next()).done).toBe(true);
  });

  it('never shows the secret: store, lock, inspect, errors', async () => {
    const store = new DoozerElectionStore(await fx.connect());
    const request = (name: string) => ({
      name,
      address: '127.0.0.1:1',
      participating: true,
      timing: TIMING,
      clock: systemClock,
      logger: quiet,
    });
    const lock = await store.openLock(request('sk'));
    const bad = await store.openLock(request('a/b')).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ElectionConfigError);
    expect((bad as ElectionConfigError).option).toBe('name');
    for (const text of [String(store), String(lock), inspect(store), inspect(lock), String(bad)]) {
      expect(text).not.toContain(SK);
    }
    expect(String(lock)).toContain('sk=***');
    await lock.close();
  });
});

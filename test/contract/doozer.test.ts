/**
 * The storage port's contract against the Doozer lock on the embedded
 * server (with a read-write secret, so that the store's description is
 * checked not to leak it).
 */
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DoozerClient, DoozerTimeoutError } from '../../lib/doozer/index.js';
import { systemClock } from '../../lib/election/clock.js';
import { parseLease } from '../../lib/election/lease.js';
import { releasedLease } from '../../lib/backends/doozer/layout.js';
import {
  DoozerElectionStore,
  ElectionConfigError,
  MasterElectionClient,
  electionPath,
  leasePath,
  type ElectionLock,
  type LockEvent,
  type LockSnapshot,
  type LockTerm,
  type LockVersion,
} from '../../lib/index.js';
import { DoozerServer } from '../../lib/testing/index.js';
import { ManualClock } from '../../lib/testing/manual-clock.js';
import { Recorder } from '../election/recorder.js';
import { waitFor } from '../support/wait.js';
import { lockContract } from './lock-contract.js';

/** Holds "secret" so that the contract's check of `String(store)` would catch a leak. */
const SK = 'contract-secret-sk';

const resets = {
  // Every WAIT ends with a lost connection; the store is kept.
  'dropped connections': (server: DoozerServer) => Promise.resolve(server.dropConnections()),
  // The node comes back empty, as a restarted doozerd does.
  'a server restarted empty': (server: DoozerServer) => server.restart(),
};

for (const [how, reset] of Object.entries(resets)) {
  lockContract(`doozer (embedded server; reset: ${how})`, async () => {
    const server = await DoozerServer.start({ heartbeatMs: 0, rwSecret: SK });
    const clients: DoozerClient[] = [];
    return {
      async connect() {
        const client = await DoozerClient.connect(`${server.uri}&sk=${SK}`, {
          reconnect: { initialDelayMs: 5, maxDelayMs: 50 },
        });
        clients.push(client);
        return new DoozerElectionStore(client);
      },
      // Names that are not one Doozer path component: they would fail on the
      // wire, or alias another election's files.
      badNames: ['a/b', '../jobs', 'jobs/', 'a b', 'master*', 'x\n', 'ü', '*'],
      forceReset: () => reset(server),
      async teardown() {
        for (const c of clients.splice(0)) await c.close();
        await server.close();
      },
    };
  });
}

// ------------------------------------------------------------- Doozer rules

const CALL = { timeoutMs: 10_000 };
const TIMING = { leaseMs: 10_000, renewDeadlineMs: 7_000, retryPeriodMs: 2_000 };
const quiet = { log: () => {}, warn: () => {}, error: () => {} };
const E = (name: string): string => electionPath(name);
const L = (name: string): string => leasePath(name);

describe('Doozer lock: the files and their rules', () => {
  let server: DoozerServer;
  let raw: DoozerClient;
  const clients: DoozerClient[] = [];
  const locks: ElectionLock[] = [];
  let watches: AbortController;

  beforeEach(async () => {
    server = await DoozerServer.start({ heartbeatMs: 0, rwSecret: SK });
    raw = await connect();
    watches = new AbortController();
  });

  afterEach(async () => {
    watches.abort();
    for (const l of locks.splice(0)) await l.close();
    for (const c of clients.splice(0)) await c.close();
    await server.close();
  });

  async function connect(uri = `${server.uri}&sk=${SK}`, startAt?: 'first'): Promise<DoozerClient> {
    const client = await DoozerClient.connect(uri, {
      reconnect: { initialDelayMs: 5, maxDelayMs: 50 },
      ...(startAt ? { startAt } : {}),
    });
    clients.push(client);
    return client;
  }

  async function open(
    name: string,
    address: string,
    opts: { participating?: boolean; client?: DoozerClient } = {},
  ): Promise<ElectionLock> {
    const store = new DoozerElectionStore(opts.client ?? (await connect()));
    const lock = await store.openLock({
      name,
      address,
      participating: opts.participating ?? true,
      timing: TIMING,
      clock: systemClock,
      logger: quiet,
    });
    locks.push(lock);
    return lock;
  }

  /** Follows `lock` from `from` until the test ends. */
  const follow = (lock: ElectionLock, from: LockVersion): AsyncIterator<LockEvent> =>
    lock.watch(from, watches.signal)[Symbol.asyncIterator]();

  async function nextChange(it: AsyncIterator<LockEvent>): Promise<LockSnapshot> {
    const r = await it.next();
    if (r.done || r.value.kind !== 'change')
      throw new Error(`expected a change, got ${JSON.stringify(r)}`);
    return r.value.snapshot;
  }

  async function win(lock: ElectionLock): Promise<LockTerm> {
    const r = await lock.create((await lock.read(CALL)).version, CALL);
    if (r.kind !== 'won') throw new Error('did not win');
    return r.term;
  }

  it("writes the election file byte for byte as today's engine (and the Go package) does, and the lease in the same shape", async () => {
    const address = '10.0.0.7:8080';
    const clock = new ManualClock();
    const old = await MasterElectionClient.create(
      await connect(),
      'old',
      address,
      true,
      new Recorder(),
      {
        ...TIMING,
        electionJitterMs: 0,
        clock,
      },
    );
    clock.advance(TIMING.leaseMs); // a fresh store: the missing lease is waited out first
    await waitFor(() => old.isMaster(), 'the engine of today to win', {
      step: () => clock.advance(0),
    });
    const lock = await open('new', address);
    const term = await win(lock);
    const [eOld, eNew] = [await raw.get(E('old')), await raw.get(E('new'))];
    // The Go package writes addr.String() and nothing else.
    expect(Buffer.from(eNew.value)).toEqual(Buffer.from(address, 'utf8'));
    expect(Buffer.from(eNew.value)).toEqual(Buffer.from(eOld.value));
    expect(term.token).toBe(eNew.rev);
    const [lOld, lNew] = [await raw.get(L('old')), await raw.get(L('new'))];
    const [rOld, rNew] = [JSON.parse(lOld.text) as object, JSON.parse(lNew.text) as object];
    expect(Object.keys(rNew)).toEqual(Object.keys(rOld));
    expect(parseLease(lNew.text)).toMatchObject({
      v: 1,
      state: 'held',
      term: eNew.rev,
      holder: address,
      id: lock.id,
      seq: 0,
    });
    expect(parseLease(lNew.text)?.nonce).toMatch(/^[0-9a-f]{12}$/);
    // A renewal writes only the lease, with the attempt as seq.
    const renewed = await lock.renew(term, 1, CALL);
    expect(renewed).toMatchObject({ kind: 'renewed', attempt: 1 });
    expect((await raw.get(E('new'))).rev).toBe(eNew.rev);
    expect(parseLease((await raw.get(L('new'))).text)).toMatchObject({
      seq: 1,
      nonce: parseLease(lNew.text)?.nonce,
    });
    // Each sees the other's master as it is.
    const seen = await (await open('old', '10.0.0.8:1', { participating: false })).read(CALL);
    expect(seen.record).toMatchObject({
      state: 'held',
      holder: address,
      token: eOld.rev,
      holderId: parseLease(lOld.text)?.id,
    });
    const rec = new Recorder();
    const follower = await MasterElectionClient.create(
      await connect(),
      'new',
      '10.0.0.9:1',
      false,
      rec,
      { ...TIMING, clock },
    );
    await follower.whenIdle();
    expect(rec.events).toEqual([{ type: 'slave', master: address }]);
    expect(rec.slaveTokens).toEqual([term.token]);
    await follower.close();
    await old.close();
  });

  it("reads a Go master (an election file without a lease) as 'unleased' with no holder id; deposing it keeps the liveness", async () => {
    const goMaster = '[::1]:4242'; // the Go tool's default address
    const lock = await open('go', '127.0.0.1:1');
    for (const lease of ['', 'not json']) {
      if (lease) await raw.set(L('go'), -1, lease);
      const rev = await raw.set(E('go'), 0, goMaster);
      const before = await lock.read(CALL);
      expect(before.record).toEqual({
        state: 'unleased',
        holder: goMaster,
        holderId: '',
        token: rev,
        termId: expect.any(String) as string,
      });
      expect(await lock.depose(before.version, CALL)).toBe('deposed');
      expect((await raw.get(E('go'))).rev).toBe(0);
      const after = await lock.read(CALL);
      expect(after.record).toBeNull();
      // The term is waited out from its last proof of life, not from the delete.
      expect(after.liveness).toBe(before.liveness);
    }
    // A stale lease of an older term of ours does not lease a Go master's file either.
    const term = await win(lock);
    expect(await lock.release(term, CALL)).toBe('released');
    const rev = await raw.set(E('go'), 0, goMaster);
    expect((await lock.read(CALL)).record).toMatchObject({
      state: 'unleased',
      holderId: '',
      token: rev,
    });
  });

  it('a DEL of the election file (a forced election, as the Go tool makes it) is seen as the term ended; the way is free once it is given back', async () => {
    const a = await open('forced', '10.0.0.1:80');
    const b = await open('forced', '10.0.0.2:80');
    const term = await win(a);
    const events = follow(b, (await b.read(CALL)).version);
    const e = await raw.get(E('forced'));
    await raw.del(E('forced'), e.rev);
    const ended = await nextChange(events);
    expect(ended.record).toMatchObject({
      state: 'ended',
      holderId: a.id,
      holder: '10.0.0.1:80',
      token: term.token,
    });
    expect(await a.renew(term, 1, CALL)).toEqual({ kind: 'lost', holder: '' });
    expect(await a.release(term, CALL)).toBe('released');
    const freed = await nextChange(events);
    expect(freed.record).toMatchObject({ state: 'released', holderId: a.id });
    const next = await b.create(freed.version, CALL);
    expect(next.kind).toBe('won');
    if (next.kind === 'won') expect(next.term.token).toBeGreaterThan(term.token);
  });

  it('a candidate finishes a release whose holder died before deleting its election file, and never touches a held one', async () => {
    const a = await open('half', '10.0.0.1:80');
    const b = await open('half', '10.0.0.2:80');
    const term = await win(a);
    // B finds the lease held: its create loses and leaves A's election file alone.
    expect(await b.create((await b.read(CALL)).version, CALL)).toEqual({ kind: 'lost' });
    expect((await raw.get(E('half'))).rev).toBe(term.token);
    // A writes its release, then dies before its delete.
    const l = await raw.get(L('half'));
    const r = parseLease(l.text)!;
    await raw.set(L('half'), l.rev, releasedLease({ holder: r.holder, id: r.id }, r.term, r.seq));
    const seen = await b.read(CALL);
    expect(seen.record).toMatchObject({ state: 'released', holderId: a.id, token: term.token });
    const next = await b.create(seen.version, CALL);
    expect(next.kind).toBe('won');
    if (next.kind !== 'won') return;
    expect(next.term.token).toBeGreaterThan(term.token);
    expect(await raw.get(E('half'))).toMatchObject({ rev: next.term.token, text: '10.0.0.2:80' });
    expect((await b.read(CALL)).record).toMatchObject({ state: 'held', holderId: b.id });
  });

  it('reads before it creates: a create from a basis overtaken by another term writes nothing', async () => {
    const a = await open('read-first', '10.0.0.1:80');
    const b = await open('read-first', '10.0.0.2:80');
    const basis = (await b.read(CALL)).version;
    await win(a);
    const rev = await raw.rev();
    expect(await b.create(basis, CALL)).toEqual({ kind: 'lost' });
    expect(await raw.rev()).toBe(rev); // a failed write would have taken a rev (/ctl/err)
  });

  it('a server restarted empty: the next read reports stateLost, old terms and versions are void', async () => {
    const client = await connect();
    const a = await open('lost', '10.0.0.1:80', { client });
    const term = await win(a);
    const old = await a.read(CALL);
    for (let i = 0; i < 100; i++) await raw.set('/pad', -1, String(i)); // far past a fresh server's rev
    const conns = [client.connectionId, raw.connectionId];
    await server.restart();
    await waitFor(
      () => [client, raw].every((c, i) => c.state === 'connected' && c.connectionId !== conns[i]),
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
    const r = await follow(a, old.version).next();
    expect(r.value).toMatchObject({ kind: 'reset' });
    expect(await raw.get(E('lost'))).toMatchObject({ rev: 0 }); // nothing was written
    expect((await win(a)).token).toBeGreaterThan(0);
  });

  it('a renewal whose answer was lost is recognised by its attempt when it lands late', async () => {
    const client = await connect();
    // The real client, except that the server stops answering just before the next SET goes out.
    let pauseOnSet = false;
    const pausing = new Proxy(client, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        if (prop === 'set') {
          return (...args: Parameters<DoozerClient['set']>) => {
            if (pauseOnSet) server.pause();
            pauseOnSet = false;
            return target.set(...args);
          };
        }
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });
    const a = await open('late', '10.0.0.1:80', { client: pausing });
    const term = await win(a);
    const before = await raw.get(L('late'));
    pauseOnSet = true;
    const err = await a.renew(term, 1, { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DoozerTimeoutError);
    expect(a.classify(err)).toBe('transient');
    server.resume(); // the write of attempt 1 lands now, its answer long given up
    await raw.wait(L('late'), before.rev + 1);
    expect(parseLease((await raw.get(L('late'))).text)).toMatchObject({ seq: 1 });
    expect(await a.renew(term, 2, CALL)).toMatchObject({ kind: 'renewed', attempt: 1 });
  });

  it('a term learned on a connection that is gone is confirmed by a read on the new one, which extends nothing', async () => {
    const client = await connect();
    const a = await open('moved', '10.0.0.1:80', { client });
    const term = await win(a);
    const conn = client.connectionId;
    server.dropConnections();
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
      const pad = await connect(`${other.uri}&sk=${SK}`);
      for (let i = 0; i < 100; i++) await pad.set('/pad', -1, String(i)); // its rev is past the first's
      const client = await connect(
        `doozer:?ca=${server.address}&ca=${other.address}&sk=${SK}`,
        'first',
      );
      const lock = await open('nodes', '127.0.0.1:1', { client });
      const first = await lock.read(CALL);
      expect((await lock.read(CALL)).liveness).toBe(first.liveness);
      await server.stop(); // the client moves to the other node
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
    await server.close();
    server = await DoozerServer.start({ heartbeatMs: 0, rwSecret: SK, history: 10 });
    raw = await connect();
    const a = await open('behind', '10.0.0.1:80');
    const events = follow(a, (await a.read(CALL)).version);
    await win(a);
    await nextChange(events); // the consumer then stops reading for a while
    for (let i = 0; i < 30; i++) await raw.set('/pad', -1, String(i));
    const r = await events.next();
    expect(r.value).toMatchObject({
      kind: 'reset',
      reason: expect.stringMatching(/TOO_LATE/) as string,
    });
    expect((await events.next()).done).toBe(true);
  });

  it('never shows the secret: store, lock, inspect, errors', async () => {
    const store = new DoozerElectionStore(await connect());
    const lock = await store.openLock({
      name: 'sk',
      address: '127.0.0.1:1',
      participating: true,
      timing: TIMING,
      clock: systemClock,
      logger: quiet,
    });
    locks.push(lock);
    const bad = await store
      .openLock({
        name: 'a/b',
        address: '127.0.0.1:1',
        participating: true,
        timing: TIMING,
        clock: systemClock,
        logger: quiet,
      })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ElectionConfigError);
    expect((bad as ElectionConfigError).option).toBe('name');
    for (const text of [String(store), String(lock), inspect(store), inspect(lock), String(bad)]) {
      expect(text).not.toContain(SK);
    }
    expect(String(lock)).toContain('sk=***');
  });
});

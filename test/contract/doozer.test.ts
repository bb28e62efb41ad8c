/**
 * The storage port's contract against the Doozer lock on the embedded
 * server (with a read-write secret, so that the store's description is
 * checked not to leak it), and what the lock keeps of the Doozer layout:
 * the Go package's election file byte for byte, Go masters, forced
 * elections. Faults: doozer-faults.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { releasedLease } from '../../lib/backends/doozer/layout.js';
import { DoozerClient } from '../../lib/doozer/index.js';
import { parseLease } from '../../lib/election/lease.js';
import { DoozerElectionStore, MasterElectionClient } from '../../lib/index.js';
import { DoozerServer } from '../../lib/testing/index.js';
import { ManualClock } from '../../lib/testing/manual-clock.js';
import { Recorder } from '../election/recorder.js';
import { waitFor } from '../support/wait.js';
import { CALL, E, L, SK, TIMING, doozerFixture, nextChange, win } from './doozer-fixture.js';
import { lockContract } from './lock-contract.js';

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

describe('Doozer lock: the files, as the Go package and the engine of before write them', () => {
  const fx = doozerFixture();

  it("writes the election file byte for byte as today's engine (and the Go package) does, and the lease in the same shape", async () => {
    const address = '10.0.0.7:8080';
    const clock = new ManualClock();
    const old = await MasterElectionClient.create(
      await fx.connect(),
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
    const lock = await fx.open('new', address);
    const term = await win(lock);
    const [eOld, eNew] = [await fx.raw.get(E('old')), await fx.raw.get(E('new'))];
    // The Go package writes addr.String() and nothing else.
    expect(Buffer.from(eNew.value)).toEqual(Buffer.from(address, 'utf8'));
    expect(Buffer.from(eNew.value)).toEqual(Buffer.from(eOld.value));
    expect(term.token).toBe(eNew.rev);
    const [lOld, lNew] = [await fx.raw.get(L('old')), await fx.raw.get(L('new'))];
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
    expect((await fx.raw.get(E('new'))).rev).toBe(eNew.rev);
    expect(parseLease((await fx.raw.get(L('new'))).text)).toMatchObject({
      seq: 1,
      nonce: parseLease(lNew.text)?.nonce,
    });
    // Each sees the other's master as it is.
    const seen = await (await fx.open('old', '10.0.0.8:1', { participating: false })).read(CALL);
    expect(seen.record).toMatchObject({
      state: 'held',
      holder: address,
      token: eOld.rev,
      holderId: parseLease(lOld.text)?.id,
    });
    const rec = new Recorder();
    const follower = await MasterElectionClient.create(
      await fx.connect(),
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
    const lock = await fx.open('go', '127.0.0.1:1');
    for (const lease of ['', 'not json']) {
      if (lease) await fx.raw.set(L('go'), -1, lease);
      const rev = await fx.raw.set(E('go'), 0, goMaster);
      const before = await lock.read(CALL);
      expect(before.record).toEqual({
        state: 'unleased',
        holder: goMaster,
        holderId: '',
        token: rev,
        termId: expect.any(String) as string,
      });
      expect(await lock.depose(before.version, CALL)).toBe('deposed');
      expect((await fx.raw.get(E('go'))).rev).toBe(0);
      const after = await lock.read(CALL);
      expect(after.record).toBeNull();
      // The term is waited out from its last proof of life, not from the delete.
      expect(after.liveness).toBe(before.liveness);
    }
    // A stale lease of an older term of ours does not lease a Go master's file either.
    const term = await win(lock);
    expect(await lock.release(term, CALL)).toBe('released');
    const rev = await fx.raw.set(E('go'), 0, goMaster);
    expect((await lock.read(CALL)).record).toMatchObject({
      state: 'unleased',
      holderId: '',
      token: rev,
    });
  });

  it('a DEL of the election file (a forced election, as the Go tool makes it) is seen as the term ended; the way is free once it is given back', async () => {
    const a = await fx.open('forced', '10.0.0.1:80');
    const b = await fx.open('forced', '10.0.0.2:80');
    const term = await win(a);
    const events = fx.follow(b, (await b.read(CALL)).version);
    const e = await fx.raw.get(E('forced'));
    await fx.raw.del(E('forced'), e.rev);
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
    const a = await fx.open('half', '10.0.0.1:80');
    const b = await fx.open('half', '10.0.0.2:80');
    const term = await win(a);
    // B finds the lease held: its create loses and leaves A's election file alone.
    expect(await b.create((await b.read(CALL)).version, CALL)).toEqual({ kind: 'lost' });
    expect((await fx.raw.get(E('half'))).rev).toBe(term.token);
    // A writes its release, then dies before its delete.
    const l = await fx.raw.get(L('half'));
    const r = parseLease(l.text)!;
    await fx.raw.set(
      L('half'),
      l.rev,
      releasedLease({ holder: r.holder, id: r.id }, r.term, r.seq),
    );
    const seen = await b.read(CALL);
    expect(seen.record).toMatchObject({ state: 'released', holderId: a.id, token: term.token });
    const next = await b.create(seen.version, CALL);
    expect(next.kind).toBe('won');
    if (next.kind !== 'won') return;
    expect(next.term.token).toBeGreaterThan(term.token);
    expect(await fx.raw.get(E('half'))).toMatchObject({
      rev: next.term.token,
      text: '10.0.0.2:80',
    });
    expect((await b.read(CALL)).record).toMatchObject({ state: 'held', holderId: b.id });
  });

  it('reads before it creates: a create from a basis overtaken by another term writes nothing', async () => {
    const a = await fx.open('read-first', '10.0.0.1:80');
    const b = await fx.open('read-first', '10.0.0.2:80');
    const basis = (await b.read(CALL)).version;
    await win(a);
    const rev = await fx.raw.rev();
    expect(await b.create(basis, CALL)).toEqual({ kind: 'lost' });
    expect(await fx.raw.rev()).toBe(rev); // a failed write would have taken a rev (/ctl/err)
  });
});

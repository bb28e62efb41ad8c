import type { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EtcdElectionStore } from '../../../lib/backends/etcd/index.js';
import { ElectionConfigError } from '../../../lib/election/errors.js';
import type { ElectionLock, LockEvent, LockVersion } from '../../../lib/election/port.js';
import { ETCD_BIN, EtcdServer } from '../../support/etcd.js';
import { CALL, eventually, rawClient, request, until, follow as watch, win } from './fixture.js';

describe.skipIf(!ETCD_BIN)('etcd lock on a real etcd', () => {
  let server: EtcdServer;
  let raw: Etcd3;
  let store: EtcdElectionStore;
  const aborts: AbortController[] = [];
  let seq = 0;
  const name = (): string => `lock-${++seq}`;

  beforeAll(async () => {
    server = await EtcdServer.start();
    raw = rawClient(server.endpoint);
    store = await EtcdElectionStore.connect(server.uri('/t'));
  });
  afterEach(() => {
    for (const a of aborts.splice(0)) a.abort();
  });
  afterAll(async () => {
    await store?.close();
    raw?.close();
    await server?.stop();
  });

  const follow = (lock: ElectionLock, from: LockVersion) => watch(aborts, lock, from);
  const gone = (e: LockEvent): boolean => e.kind === 'change' && e.snapshot.record === null;

  it("writes Go's layout: <prefix><name>/<lease id in hex> = address, bound to the lease, token = create revision", async () => {
    const n = name();
    const lock = await store.openLock(request(n, '127.0.0.1:7001', 4000));
    const term = await win(lock);
    const kvs = await raw.getAll().prefix(`t/${n}/`).exec();
    expect(kvs.kvs).toHaveLength(1);
    const kv = kvs.kvs[0]!;
    expect(kv.key.toString()).toBe(`t/${n}/${lock.id}`);
    expect(kv.value.toString()).toBe('127.0.0.1:7001');
    expect(BigInt(kv.lease).toString(16)).toBe(lock.id);
    expect(Number(kv.create_revision)).toBe(term.token);
    const ttl = await raw.leaseClient.leaseTimeToLive({ ID: kv.lease });
    expect(Number(ttl.grantedTTL)).toBeGreaterThanOrEqual(4);
    expect(await lock.release(term, CALL)).toBe('released');
    expect((await raw.getAll().prefix(`t/${n}/`).keys()).length).toBe(0);
    await lock.close();
  });

  it('a master that stops renewing loses its key when etcd expires its lease; its next renew is lost', async () => {
    const n = name();
    const master = await store.openLock(request(n, '127.0.0.1:7101', 1000));
    const follower = await store.openLock(request(n, '127.0.0.1:7102', 1000));
    const term = await win(master);
    const events = follow(follower, (await follower.read(CALL)).version);
    // No renew from here on: etcd ends the term by itself (TTL 1 s, raised to etcd's minimum).
    await until(events, gone);
    expect((await master.renew(term, 1, CALL)).kind).toBe('lost');
    // The same lock (same id, lease granted again) can run again, with a larger token.
    const again = await win(master);
    expect(again.token).toBeGreaterThan(term.token);
    expect((await follower.read(CALL)).record).toMatchObject({ holderId: master.id });
    await master.release(again, CALL);
    await Promise.all([master.close(), follower.close()]);
  });

  it('a revoked lease ends the term: watchers see the key go, renew reports lost', async () => {
    const n = name();
    const master = await store.openLock(request(n, '127.0.0.1:7201'));
    const term = await win(master);
    const events = follow(master, term.version);
    await raw.leaseClient.leaseRevoke({ ID: BigInt(`0x${master.id}`).toString() });
    await until(events, gone);
    expect(await master.renew(term, 1, CALL)).toMatchObject({ kind: 'lost' });
    expect(await master.release(term, CALL)).toBe('not-held');
    await master.close();
  });

  it('a watch from a compacted revision ends with a reset', async () => {
    const n = name();
    const lock = await store.openLock(request(n, '127.0.0.1:7301'));
    const old = await lock.read(CALL);
    for (let i = 0; i < 3; i++) await lock.release(await win(lock), CALL);
    const now = await lock.read(CALL);
    const rev = (now.version as unknown as { rev: number }).rev;
    await raw.kv.compact({ revision: rev, physical: true });
    const first = await until(follow(lock, old.version), () => true);
    expect(first).toMatchObject({ kind: 'reset' });
    if (first.kind === 'reset') expect(first.reason).toMatch(/compact/);
    // A fresh read and a watch from it work.
    const fresh = await lock.read(CALL);
    const events = follow(lock, fresh.version);
    const term = await win(lock);
    const seen = await until(events, (e) => e.kind === 'change' && e.snapshot.record !== null);
    if (seen.kind === 'change') expect(seen.snapshot.record?.termId).toBe(term.termId);
    await lock.close();
  });

  it('a passive participant reads and follows, holds no lease, and may not run', async () => {
    const n = name();
    const passive = await store.openLock(request(n, '127.0.0.1:7401', 10_000, false));
    const master = await store.openLock(request(n, '127.0.0.1:7402'));
    const view = await passive.read(CALL);
    const events = follow(passive, view.version);
    const term = await win(master);
    const ev = await until(events, (e) => e.kind === 'change' && e.snapshot.record !== null);
    if (ev.kind === 'change')
      expect(ev.snapshot.record).toMatchObject({ holder: '127.0.0.1:7402', token: term.token });
    const leases = await raw.leaseClient.leaseLeases({});
    expect(leases.leases.map((l) => BigInt(l.ID).toString(16))).not.toContain(passive.id);
    await master.release(term, CALL);
    await Promise.all([passive.close(), master.close()]);
  });

  it('closing a lock revokes its lease (and so frees its key at once)', async () => {
    const n = name();
    const lock = await store.openLock(request(n, '127.0.0.1:7501'));
    const other = await store.openLock(request(n, '127.0.0.1:7502'));
    await win(lock);
    const events = follow(other, (await other.read(CALL)).version);
    await lock.close();
    await until(events, gone);
    expect((await win(other)).token).toBeGreaterThan(0);
    await other.close();
  });

  it('rejects bad names and lease timing before anything is written', async () => {
    for (const bad of ['', 'a/b', '/x', 'x/', 'tab\there', 'x'.repeat(300)]) {
      await expect(store.openLock(request(bad, '127.0.0.1:1'))).rejects.toBeInstanceOf(
        ElectionConfigError,
      );
    }
    await expect(store.openLock(request('ok', '127.0.0.1:1', Number.NaN))).rejects.toMatchObject({
      option: 'leaseMs',
    });
    const keys = await raw.getAll().prefix('t/').keys();
    expect(keys.filter((k) => !k.startsWith('t/lock-'))).toEqual([]);
  });
});

describe.skipIf(!ETCD_BIN)('etcd lock: a create whose answer is lost', () => {
  let server: EtcdServer;
  let raw: Etcd3;
  let store: EtcdElectionStore;

  beforeAll(async () => {
    server = await EtcdServer.start();
    raw = rawClient(server.endpoint);
    store = await EtcdElectionStore.connect(server.uri('/lost'));
  });
  afterAll(async () => {
    await store?.close();
    raw?.close();
    await server?.stop();
  });

  /** Starts a create and aborts it at once: the transaction is on its way and lands, its answer is dropped. */
  async function lostCreate(
    lock: ElectionLock,
    name: string,
  ): Promise<{ rev: number; basis: LockVersion }> {
    await lock.release(await win(lock), CALL); // the lease is granted: create sends its transaction at once
    const abort = new AbortController();
    const basis = (await lock.read(CALL)).version;
    const creating = lock.create(basis, { ...CALL, signal: abort.signal });
    abort.abort();
    const err = await creating.catch((e: unknown) => e);
    expect(lock.classify(err)).toBe('transient');
    let rev = 0;
    await eventually(async () => {
      const kvs = (await raw.getAll().prefix(`lost/${name}/`).exec()).kvs;
      rev = kvs.length === 1 ? Number(kvs[0]!.create_revision) : 0;
      return rev > 0;
    }, 'the aborted create to land');
    return { rev, basis };
  }

  it('the next read deletes the key it left', async () => {
    const lock = await store.openLock(request('read-cleans', '127.0.0.1:7601'));
    await lostCreate(lock, 'read-cleans');
    expect((await lock.read(CALL)).record).toBeNull();
    expect(await raw.getAll().prefix('lost/read-cleans/').keys()).toEqual([]);
    await lock.close();
  });

  it('a create that finds the key it left leading takes it as its term', async () => {
    const lock = await store.openLock(request('create-finds', '127.0.0.1:7701'));
    const { rev, basis } = await lostCreate(lock, 'create-finds');
    const again = await lock.create(basis, CALL);
    expect(again).toMatchObject({ kind: 'won', term: { token: rev } });
    if (again.kind !== 'won') throw new Error('unreachable');
    expect(await lock.release(again.term, CALL)).toBe('released');
    expect(await raw.getAll().prefix('lost/create-finds/').keys()).toEqual([]);
    await lock.close();
  });
});

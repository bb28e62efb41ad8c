/**
 * Interop with etcd's own elections: `etcdctl elect` (Go's
 * concurrency.Election) and our locks share one election.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EtcdElectionStore } from '../../../lib/backends/etcd/index.js';
import type { ElectionLock, LockVersion } from '../../../lib/election/port.js';
import { ETCDCTL_BIN, ETCD_BIN, EtcdServer } from '../../support/etcd.js';
import { CALL, eventually, rawClient, request, until, follow as watch, win } from './fixture.js';

/** An `etcdctl elect` process and what it printed. */
class Etcdctl {
  out = '';
  readonly exited: Promise<number | null>;
  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (c: Buffer) => (this.out += c.toString('utf8')));
    child.stderr?.on('data', (c: Buffer) => (this.out += c.toString('utf8')));
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
  }
  async printed(text: string, what: string): Promise<void> {
    await eventually(
      () => Promise.resolve(this.out.includes(text)),
      `${what} (output: ${this.out})`,
    );
  }
}

describe.skipIf(!ETCD_BIN || !ETCDCTL_BIN)('etcd interop with etcdctl elect', () => {
  let server: EtcdServer;
  let raw: Etcd3;
  let store: EtcdElectionStore;
  const procs: Etcdctl[] = [];
  const locks: ElectionLock[] = [];
  const aborts: AbortController[] = [];

  const etcdctl = (...args: string[]): Etcdctl => {
    const p = new Etcdctl(
      spawn(ETCDCTL_BIN!, [`--endpoints=${server.endpoint}`, 'elect', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ETCDCTL_API: '3' },
      }),
    );
    procs.push(p);
    return p;
  };
  const open = async (name: string, address: string): Promise<ElectionLock> => {
    const lock = await store.openLock(request(`${name}`, address));
    locks.push(lock);
    return lock;
  };
  const follow = (lock: ElectionLock, from: LockVersion) => watch(aborts, lock, from);
  const candidates = async (prefix: string): Promise<number> =>
    (await raw.getAll().prefix(prefix).keys()).length;

  beforeAll(async () => {
    server = await EtcdServer.start();
    raw = rawClient(server.endpoint);
    store = await EtcdElectionStore.connect(server.uri('/ix'));
  });
  afterEach(async () => {
    for (const a of aborts.splice(0)) a.abort();
    for (const p of procs.splice(0)) {
      p.child.kill('SIGKILL');
      await p.exited;
    }
    for (const l of locks.splice(0)) await l.close();
  });
  afterAll(async () => {
    await store?.close();
    raw?.close();
    await server?.stop();
  });

  it('etcdctl elect --listen shows our master, and the next one after a resign', async () => {
    const a = await open('listen', '127.0.0.1:8001');
    const b = await open('listen', '127.0.0.1:8002');
    const term = await win(a);
    const listener = etcdctl('--listen', 'ix/listen');
    await listener.printed(`ix/listen/${a.id}\n127.0.0.1:8001`, 'the listener to show our master');
    const events = follow(b, (await b.read(CALL)).version);
    await a.release(term, CALL);
    const freed = await until(events, (e) => e.kind === 'change' && e.snapshot.record === null);
    if (freed.kind !== 'change') throw new Error('unreachable');
    expect((await b.create(freed.snapshot.version, CALL)).kind).toBe('won');
    await listener.printed(
      `ix/listen/${b.id}\n127.0.0.1:8002`,
      'the listener to show the new master',
    );
  });

  it('an etcdctl elect leader is the holder our locks see; when it resigns (SIGTERM) ours takes over', async () => {
    const go = etcdctl('ix/led', 'go-proposal');
    await go.printed('go-proposal', 'etcdctl to become leader');
    const lock = await open('led', '127.0.0.1:8101');
    const view = await lock.read(CALL);
    expect(view.record).toMatchObject({ state: 'held', holder: 'go-proposal' });
    const [key] = await raw.getAll().prefix('ix/led/').keys();
    expect(view.record?.holderId).toBe(key!.slice('ix/led/'.length));
    expect((await lock.create(view.version, CALL)).kind).toBe('lost');
    const events = follow(lock, view.version);
    go.child.kill('SIGTERM');
    const freed = await until(events, (e) => e.kind === 'change' && e.snapshot.record === null);
    expect(await go.exited).toBe(0);
    if (freed.kind !== 'change') throw new Error('unreachable');
    const won = await lock.create(freed.snapshot.version, CALL);
    if (won.kind !== 'won') throw new Error('ours did not take over');
    expect(won.term.token).toBeGreaterThan(view.record!.token);
  });

  it('an etcdctl candidate waiting behind our master becomes leader when ours resigns, and our locks report it', async () => {
    const master = await open('queue', '127.0.0.1:8201');
    const follower = await open('queue', '127.0.0.1:8202');
    const term = await win(master);
    const go = etcdctl('ix/queue', 'go-next');
    await eventually(async () => (await candidates('ix/queue/')) === 2, 'etcdctl to queue its key');
    expect(go.out).not.toContain('go-next');
    expect((await follower.read(CALL)).record).toMatchObject({ holder: '127.0.0.1:8201' });
    const events = follow(follower, (await follower.read(CALL)).version);
    await master.release(term, CALL);
    const next = await until(events, (e) => e.kind === 'change' && e.snapshot.record !== null);
    if (next.kind !== 'change') throw new Error('unreachable');
    expect(next.snapshot.record).toMatchObject({ state: 'held', holder: 'go-next' });
    expect(next.snapshot.record!.token).toBeGreaterThan(term.token);
    await go.printed('go-next', 'etcdctl to report that it leads');
    expect((await follower.create(next.snapshot.version, CALL)).kind).toBe('lost');
  });

  it('a forced election (depose) deletes an etcdctl leader’s key; etcdctl keeps running unaware', async () => {
    const go = etcdctl('ix/forced', 'go-forced');
    await go.printed('go-forced', 'etcdctl to become leader');
    const lock = await open('forced', '127.0.0.1:8301');
    const view = await lock.read(CALL);
    expect(await lock.depose(view.version, CALL)).toBe('deposed');
    expect((await win(lock)).token).toBeGreaterThan(view.record!.token);
    expect(go.child.exitCode).toBeNull();
  });
});

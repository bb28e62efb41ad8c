/**
 * The election engine on real etcd, end to end: participants in their own OS
 * processes (test/fixtures/etcd-participant.ts), their roles on one
 * monotonic timeline, never two masters at once.
 */
import type { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ETCD_PARTICIPANT, Fleet } from '../../election/fleet.js';
import { ETCD_BIN, EtcdServer } from '../../support/etcd.js';
import { eventually, rawClient } from './fixture.js';

// TTL 2 s (etcd's minimum with its defaults); the master steps down 1.4 s after its last renewal's start.
const TIMING = { leaseMs: 2000, renewDeadlineMs: 1400, retryPeriodMs: 300 };
const ADDRESSES = ['127.0.0.1:9101', '127.0.0.1:9102', '127.0.0.1:9103'];

describe.skipIf(!ETCD_BIN)('election engine on etcd (participants as OS processes)', () => {
  let server: EtcdServer;
  let raw: Etcd3;
  let fleet: Fleet | undefined;
  let seq = 0;

  beforeAll(async () => {
    server = await EtcdServer.start();
    raw = rawClient(server.endpoint);
  });
  afterEach(async () => {
    await fleet?.close();
    fleet = undefined;
  });
  afterAll(async () => {
    raw?.close();
    await server?.stop();
  });

  async function start(): Promise<{ fleet: Fleet; name: string }> {
    const name = `engine-${++seq}`;
    const f = new Fleet(server.uri('/e2e'), name, TIMING, ETCD_PARTICIPANT);
    fleet = f;
    await Promise.all(ADDRESSES.map((a) => f.spawn(a)));
    await f.until(() => f.master() !== undefined, 'a master');
    return { fleet: f, name };
  }

  /** What `etcdctl elect --listen` would print: the leader key's value. */
  async function leaderValue(name: string): Promise<string | undefined> {
    const res = await raw
      .getAll()
      .prefix(`e2e/${name}/`)
      .sort('Create', 'Ascend')
      .limit(1)
      .strings();
    return Object.values(res)[0];
  }

  it('three participants elect exactly one master, the one etcd shows as leader; the others follow it', async () => {
    const { fleet: f, name } = await start();
    const master = f.master()!;
    expect(f.intervals().filter((i) => i.end === Infinity)).toHaveLength(1);
    expect(await leaderValue(name)).toBe(master);
    // Every other participant reports that master.
    await f.until(
      () =>
        ADDRESSES.filter((a) => a !== master).every((a) =>
          f.events.some((e) => e.address === a && e.ev === 'slave' && e.master === master),
        ),
      'the others to follow the master',
    );
    f.assertNoOverlap();
  });

  it('kill -9 of the master: another takes over once etcd expires its lease, with a larger token', async () => {
    const { fleet: f, name } = await start();
    const old = f.intervals().find((i) => i.end === Infinity)!;
    const killedAt = f.fault('kill -9 master');
    f.signal(old.address, 'SIGKILL');
    const next = await f.nextMasterAfter(killedAt);
    expect(next.address).not.toBe(old.address);
    expect(next.token).toBeGreaterThan(old.token);
    await eventually(
      async () => (await leaderValue(name)) === next.address,
      'etcd to show the new leader',
    );
    f.assertNoOverlap();
  });

  it('resign hands over at once to another participant', async () => {
    const { fleet: f } = await start();
    const old = f.intervals().find((i) => i.end === Infinity)!;
    const at = f.fault('resign');
    f.send(old.address, 'resign');
    const next = await f.nextMasterAfter(at);
    expect(next.address).not.toBe(old.address);
    expect(next.token).toBeGreaterThan(old.token);
    f.assertNoOverlap();
  });

  it('SIGSTOP of the master beyond its TTL: it does not act as master on waking; another took over', async () => {
    const { fleet: f } = await start();
    const old = f.intervals().find((i) => i.end === Infinity)!;
    const at = f.fault('SIGSTOP master');
    f.signal(old.address, 'SIGSTOP');
    const next = await f.nextMasterAfter(at);
    f.signal(old.address, 'SIGCONT');
    await f.until(
      () =>
        f.events.some((e) => e.address === old.address && e.ev === 'end' && e.token === old.token),
      'the woken master to report its term over',
    );
    expect(next.token).toBeGreaterThan(old.token);
    f.assertNoOverlap();
  });

  it('etcd paused (SIGSTOP) beyond the TTL: the master steps down by its deadline; a master returns after SIGCONT', async () => {
    const { fleet: f } = await start();
    const old = f.intervals().find((i) => i.end === Infinity)!;
    // Timestamped after the stop: no renewal can complete after it, so the deadline bound holds from here.
    server.pause();
    const pausedAt = f.fault('SIGSTOP etcd');
    try {
      await f.until(
        () => f.events.some((e) => e.ev === 'end' && e.token === old.token),
        'the master to step down while etcd is paused',
      );
    } finally {
      server.resume();
    }
    const end = f.events.find((e) => e.ev === 'end' && e.token === old.token)!;
    expect(end.until! - pausedAt).toBeLessThanOrEqual(TIMING.renewDeadlineMs);
    f.fault('SIGCONT etcd');
    await f.until(() => f.master() !== undefined, 'a master after etcd resumed');
    f.assertNoOverlap();
  });
});

/**
 * The election on a three-member etcd cluster on loopback, participants as
 * OS processes that connect with all three endpoints: kill -9 of the member
 * the master's client is connected to.
 *
 * Which member that is: etcd3 sends each call and stream to a random
 * member, so a participant would be connected to all three. Each
 * participant is started with `--prefer=<member>` (see
 * test/fixtures/etcd-participant.ts): with the URI's three endpoints, it
 * sends everything to that member while it answers, and to the next one when
 * it does not. Participant i prefers member i. The test checks in /proc that
 * the master's process is connected to its member and to no other before it
 * kills that member.
 */
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../../lib/election/index.js';
import { ETCD_PARTICIPANT, Fleet, type Timing } from '../../election/fleet.js';
import { ETCD_BIN } from '../../support/etcd.js';
import { EtcdCluster } from '../../support/etcd-cluster.js';
import { connectedPorts } from '../../support/tcp-peers.js';
import { eventually } from './fixture.js';

/**
 * A 3 s TTL: killing the member that leads the Raft group costs an etcd
 * leader election (1 s election timeout, longer on a loaded machine).
 */
const TIMING: Timing = { leaseMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };
const ADDRESSES = ['127.0.0.1:9401', '127.0.0.1:9402', '127.0.0.1:9403'];

describe.skipIf(!ETCD_BIN)('election engine on a three-member etcd cluster', () => {
  let cluster: EtcdCluster;
  let fleet: Fleet | undefined;
  let raw: Etcd3 | undefined;

  beforeAll(async () => {
    cluster = await EtcdCluster.start();
  });
  afterEach(async () => {
    try {
      fleet?.assertNoOverlap();
    } finally {
      raw?.close();
      await fleet?.close();
    }
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  const pidOf = (f: Fleet, address: string): number =>
    (f.events.find((e) => e.address === address && e.ev === 'ready') as { pid?: number })?.pid ?? 0;

  /** The client ports of members that `pid` has established connections to. */
  const membersOf = (pid: number, endpoints: readonly string[]): string[] => {
    const ports = connectedPorts(pid);
    return endpoints.filter((e) => ports.has(Number(e.split(':')[1])));
  };

  it('kill -9 of the member the master is connected to: its client moves on, one master throughout, a master after', async () => {
    const endpoints = cluster.endpoints;
    const f = new Fleet(cluster.uri('/cluster'), 'failover', TIMING, ETCD_PARTICIPANT);
    fleet = f;
    await Promise.all(ADDRESSES.map((a, i) => f.spawn(a, [`--prefer=${endpoints[i]}`])));
    await f.until(() => f.master() !== undefined, 'a master');
    const old = f.intervals().find((i) => i.end === Infinity)!;
    const pid = pidOf(f, old.address);
    const member = endpoints[ADDRESSES.indexOf(old.address)]!;
    const others = endpoints.filter((e) => e !== member);
    expect(membersOf(pid, endpoints)).toEqual([member]);

    const killedAt = f.fault(`kill -9 member ${member}`);
    await cluster.member(member).stop('SIGKILL');

    // The old master's process (alive, master or not) is now connected to a surviving member.
    await eventually(
      () => Promise.resolve(membersOf(pid, endpoints).some((e) => others.includes(e))),
      `${old.address} to connect to another member`,
    );
    // The election goes on through the survivors: some term is held for more
    // than renewDeadlineMs after the kill. A master stops acting at its last
    // successful renewal's start + renewDeadlineMs, so such a term was
    // renewed by a call made after the kill, which only a survivor answered.
    // (Polled: while the master renews, nobody prints anything.)
    await eventually(
      () =>
        Promise.resolve(
          f
            .intervals()
            .some(
              (i) =>
                Math.min(i.end, systemClock.now()) - Math.max(i.start, killedAt) >
                TIMING.renewDeadlineMs,
            ),
        ),
      `a term renewed after the kill; events:\n${f.dump()}`,
      60_000,
    );
    // Settled: one master, every participant follows it, and etcd (asked
    // through the survivors) names it as leader.
    raw = new Etcd3({ hosts: others.map((e) => `http://${e}`) });
    const client = raw;
    await eventually(async () => {
      const master = f.master();
      if (master === undefined) return false;
      const leader = await client
        .getAll()
        .prefix('cluster/failover/')
        .sort('Create', 'Ascend')
        .limit(1)
        .strings();
      return (
        Object.values(leader)[0] === master &&
        ADDRESSES.every(
          (a) =>
            a === master ||
            f.events.findLast((e) => e.address === a && (e.ev === 'slave' || e.ev === 'master'))
              ?.master === master,
        )
      );
    }, `one master followed by all, named by etcd; events:\n${f.dump()}`);
    expect(f.intervals().filter((i) => i.end === Infinity)).toHaveLength(1);
    expect(f.events.filter((e) => e.ev === 'fatal')).toEqual([]);
  }, 180_000);
});

/**
 * Benchmark of the etcd lock (`npm run bench:etcd-lock`, with ETCD_URI
 * naming a running etcd, e.g. `etcd://127.0.0.1:2379`).
 *
 * Two locks on one election, each on its own connection. Measures over
 * BENCH_ROUNDS rounds (default 200) the handover at the lock level: from
 * the master's release call until the follower's create (issued when its
 * watch shows the election free) has won; and the round trip of a read and
 * of a renew. Each handover starts once the follower's watch is established.
 * Prints exactly one JSON line of figures on stdout.
 */
import { EtcdElectionStore } from '../lib/backends/etcd/index.js';
import { systemClock } from '../lib/election/clock.js';
import type { ElectionLock, LockEvent, LockRequest, LockTerm } from '../lib/election/port.js';

const URI = process.env.ETCD_URI ?? 'etcd://127.0.0.1:2379/bench';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200);
const CALL = { timeoutMs: 10_000 };
const quiet = { log: () => {}, warn: () => {}, error: () => {} };

const req = (name: string, address: string): LockRequest => ({
  name,
  address,
  participating: true,
  timing: { leaseMs: 5000, renewDeadlineMs: 3500, retryPeriodMs: 1000 },
  clock: systemClock,
  logger: quiet,
});

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return Number(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!.toFixed(3));
};

async function freeEvent(it: AsyncIterator<LockEvent>): Promise<LockEvent> {
  for (;;) {
    const r = await it.next();
    if (r.done) throw new Error('watch ended');
    if (r.value.kind === 'reset') throw new Error(`watch reset: ${r.value.reason}`);
    if (r.value.snapshot.record === null) return r.value;
  }
}

async function main(): Promise<void> {
  const stores = [await EtcdElectionStore.connect(URI), await EtcdElectionStore.connect(URI)];
  const name = `bench-${process.pid}`;
  const locks: ElectionLock[] = [
    await stores[0]!.openLock(req(name, '127.0.0.1:1')),
    await stores[1]!.openLock(req(name, '127.0.0.1:2')),
  ];
  const first = await locks[0]!.create((await locks[0]!.read(CALL)).version, CALL);
  if (first.kind !== 'won') throw new Error('first create lost');
  let term: LockTerm = first.term;
  let master = 0;
  const handover: number[] = [];
  const reads: number[] = [];
  const renews: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const m = locks[master]!;
    const f = locks[1 - master]!;
    let t = performance.now();
    const view = await f.read(CALL);
    reads.push(performance.now() - t);
    t = performance.now();
    const renewed = await m.renew(term, 1, CALL);
    renews.push(performance.now() - t);
    if (renewed.kind !== 'renewed') throw new Error('renew failed');
    const abort = new AbortController();
    const it = f.watch(view.version, abort.signal)[Symbol.asyncIterator]();
    const seen = freeEvent(it);
    // Measure from an established watch, as a follower has one (a watch that starts behind etcd's
    // current revision is caught up by etcd's 100 ms sync loop instead).
    while (stores[1 - master]!.openWatches === 0) await new Promise((r) => setImmediate(r));
    t = performance.now();
    await m.release(renewed.term, CALL);
    const ev = await seen;
    if (ev.kind !== 'change') throw new Error('unreachable');
    const won = await f.create(ev.snapshot.version, CALL);
    handover.push(performance.now() - t);
    abort.abort();
    await it.return?.();
    if (won.kind !== 'won') throw new Error('follower did not win');
    term = won.term;
    master = 1 - master;
  }
  await locks[master]!.release(term, CALL);
  for (const l of locks) await l.close();
  for (const s of stores) await s.close();
  console.log(
    JSON.stringify({
      backend: 'etcd',
      rounds: ROUNDS,
      handoverMs: { p50: pct(handover, 50), p99: pct(handover, 99) },
      readMs: { p50: pct(reads, 50), p99: pct(reads, 99) },
      renewMs: { p50: pct(renews, 50), p99: pct(renews, 99) },
    }),
  );
}

await main();

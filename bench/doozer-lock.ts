/**
 * Benchmark of the Doozer lock on the storage port (`npm run bench:doozer-lock`):
 * the lock's operations as the engine calls them, against the embedded
 * server in process on 127.0.0.1, each participant on its own connection.
 *
 * - renew: one renewal (a read of the election file, then the lease
 *   compare-and-set), p50/p99 ms, and server requests per renewal;
 * - handover: a master's release -> a follower's watch sees the way free ->
 *   its create wins, p50/p99 ms;
 * - race: 8 candidates create from one basis at once: ms until all answered,
 *   winners (must be 1) and store revs used (writes, failed ones included).
 *
 * Prints exactly one JSON line. `--quick` runs fewer rounds.
 */
import { DoozerClient } from '../lib/doozer/index.js';
import {
  DoozerElectionStore,
  systemClock,
  type ElectionLock,
  type LockTerm,
} from '../lib/index.js';
import { DoozerServer } from '../lib/testing/index.js';

const ROUNDS = process.argv.includes('--quick') ? 50 : 500;
const CALL = { timeoutMs: 10_000 };
const quiet = { log: () => {}, warn: () => {}, error: () => {} };
const clients: DoozerClient[] = [];

/** p50 and p99 of `ms`, rounded to µs. */
function spread(ms: number[]): { p50: number; p99: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (p: number): number =>
    Math.round((s[Math.ceil(p * s.length) - 1] ?? NaN) * 1000) / 1000;
  return { p50: at(0.5), p99: at(0.99) };
}

async function lock(uri: string, name: string, address: string): Promise<ElectionLock> {
  const client = await DoozerClient.connect(uri);
  clients.push(client);
  const timing = { leaseMs: 10_000, renewDeadlineMs: 7_000, retryPeriodMs: 2_000 };
  const request = { name, address, participating: true, timing, clock: systemClock, logger: quiet };
  return new DoozerElectionStore(client).openLock(request);
}

async function win(l: ElectionLock): Promise<LockTerm> {
  const r = await l.create((await l.read(CALL)).version, CALL);
  if (r.kind !== 'won') throw new Error('the first create lost');
  return r.term;
}

async function renewals(server: DoozerServer): Promise<object> {
  const master = await lock(server.uri, 'renew', '127.0.0.1:1');
  let term = await win(master);
  const ms: number[] = [];
  const before = server.stats().requests;
  for (let i = 1; i <= ROUNDS; i++) {
    const t0 = performance.now();
    const r = await master.renew(term, i, CALL);
    ms.push(performance.now() - t0);
    if (r.kind !== 'renewed') throw new Error(`renewal ${i}: ${r.kind}`);
    term = r.term;
  }
  return { ...spread(ms), requestsPerRenewal: (server.stats().requests - before) / ROUNDS };
}

async function handovers(server: DoozerServer): Promise<object> {
  const pair = [
    await lock(server.uri, 'handover', '127.0.0.1:1'),
    await lock(server.uri, 'handover', '127.0.0.1:2'),
  ];
  let term = await win(pair[0]!);
  const ms: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const [from, to] = i % 2 === 0 ? [pair[0]!, pair[1]!] : [pair[1]!, pair[0]!];
    const abort = new AbortController();
    const events = to.watch((await to.read(CALL)).version, abort.signal)[Symbol.asyncIterator]();
    const t0 = performance.now();
    await from.release(term, CALL);
    for (;;) {
      const ev = await events.next();
      if (ev.done || ev.value.kind !== 'change') throw new Error('the watch ended');
      const rec = ev.value.snapshot.record;
      if (rec !== null && rec.state !== 'released') continue;
      const r = await to.create(ev.value.snapshot.version, CALL);
      if (r.kind === 'won') {
        term = r.term;
        break;
      }
    }
    ms.push(performance.now() - t0);
    abort.abort();
  }
  return spread(ms);
}

async function race(server: DoozerServer): Promise<object> {
  const all = await Promise.all(
    Array.from({ length: 8 }, (_, i) => lock(server.uri, 'race', `127.0.0.1:${i + 1}`)),
  );
  const bases = await Promise.all(all.map((l) => l.read(CALL)));
  const rev = server.rev;
  const t0 = performance.now();
  const results = await Promise.all(all.map((l, i) => l.create(bases[i]!.version, CALL)));
  const ms = Math.round((performance.now() - t0) * 1000) / 1000;
  return {
    candidates: all.length,
    ms,
    winners: results.filter((r) => r.kind === 'won').length,
    revs: server.rev - rev,
  };
}

async function main(): Promise<void> {
  const server = await DoozerServer.start({ heartbeatMs: 0 });
  try {
    const figures = {
      renew: await renewals(server),
      handover: await handovers(server),
      race: await race(server),
    };
    console.log(JSON.stringify({ bench: 'doozer-lock', rounds: ROUNDS, ...figures }));
  } finally {
    for (const c of clients) await c.close();
    await server.close();
  }
}

await main();

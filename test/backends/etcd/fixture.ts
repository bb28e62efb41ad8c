/** Shared bits of the etcd backend tests: requests, a raw client, waiting on async conditions. */
import { Etcd3 } from 'etcd3';
import { systemClock } from '../../../lib/election/clock.js';
import type {
  ElectionLock,
  LockEvent,
  LockRequest,
  LockTerm,
  LockVersion,
} from '../../../lib/election/port.js';

export const CALL = { timeoutMs: 10_000 };
export const silent = { log: () => {}, warn: () => {}, error: () => {} };

export const request = (
  name: string,
  address: string,
  leaseMs = 10_000,
  participating = true,
): LockRequest => ({
  name,
  address,
  participating,
  timing: {
    leaseMs,
    renewDeadlineMs: Math.floor(leaseMs * 0.7),
    retryPeriodMs: Math.floor(leaseMs * 0.2),
  },
  clock: systemClock,
  logger: silent,
});

/** A plain etcd3 client, to look at and change the store behind the backend's back. */
export const rawClient = (endpoint: string): Etcd3 => new Etcd3({ hosts: `http://${endpoint}` });

/** Polls `cond` (async) until it holds; fails after `timeoutMs` with `what`. */
export async function eventually(
  cond: () => Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The next watch event satisfying `pred`, within `ms` (default 30 s). */
export { untilWatchEvent as until } from '../../support/watch.js';

/** A watch of `lock` from `from`, aborted by one of `aborts` (the test's teardown aborts them). */
export function follow(
  aborts: AbortController[],
  lock: ElectionLock,
  from: LockVersion,
): AsyncIterator<LockEvent> {
  const a = new AbortController();
  aborts.push(a);
  return lock.watch(from, a.signal)[Symbol.asyncIterator]();
}

/** Reads and creates: the term, or an error when another holds the election. */
export async function win(lock: ElectionLock): Promise<LockTerm> {
  const r = await lock.create((await lock.read(CALL)).version, CALL);
  if (r.kind !== 'won') throw new Error(`${lock.toString()} did not win`);
  return r.term;
}

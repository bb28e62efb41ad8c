/**
 * A Doozer lock fixture for tests: an embedded server with a read-write
 * secret, a raw client, and locks each on a connection of its own, all
 * stopped after each test.
 */
import { afterEach, beforeEach } from 'vitest';
import { DoozerClient } from '../../lib/doozer/index.js';
import { systemClock } from '../../lib/election/clock.js';
import {
  DoozerElectionStore,
  electionPath,
  leasePath,
  type ElectionLock,
  type LockEvent,
  type LockSnapshot,
  type LockTerm,
  type LockVersion,
} from '../../lib/index.js';
import { DoozerServer, type DoozerServerOptions } from '../../lib/testing/index.js';

/** Holds "secret" so that a check of a description for /secret/ would catch a leak. */
export const SK = 'contract-secret-sk';
export const CALL = { timeoutMs: 10_000 };
export const TIMING = { leaseMs: 10_000, renewDeadlineMs: 7_000, retryPeriodMs: 2_000 };
export const quiet = { log: () => {}, warn: () => {}, error: () => {} };
export const E = (name: string): string => electionPath(name);
export const L = (name: string): string => leasePath(name);

/** The next event of a watch, which must be a change. */
export async function nextChange(it: AsyncIterator<LockEvent>): Promise<LockSnapshot> {
  const r = await it.next();
  if (r.done || r.value.kind !== 'change') {
    throw new Error(`expected a change, got ${JSON.stringify(r)}`);
  }
  return r.value.snapshot;
}

/** Wins a term from what the lock reads now. */
export async function win(lock: ElectionLock): Promise<LockTerm> {
  const r = await lock.create((await lock.read(CALL)).version, CALL);
  if (r.kind !== 'won') throw new Error('did not win');
  return r.term;
}

/** What a test gets from {@link doozerFixture}. */
export interface DoozerFixture {
  server: DoozerServer;
  /** A client of the test's own, to look at the files. */
  raw: DoozerClient;
  restartWith(options: DoozerServerOptions): Promise<void>;
  connect(uri?: string, startAt?: 'first'): Promise<DoozerClient>;
  open(
    name: string,
    address: string,
    opts?: { participating?: boolean; client?: DoozerClient },
  ): Promise<ElectionLock>;
  follow(lock: ElectionLock, from: LockVersion): AsyncIterator<LockEvent>;
}

/** Registers the hooks; the returned object is valid inside tests. */
export function doozerFixture(): DoozerFixture {
  const clients: DoozerClient[] = [];
  const locks: ElectionLock[] = [];
  let watches = new AbortController();
  const fx: DoozerFixture = {
    server: undefined as unknown as DoozerServer,
    raw: undefined as unknown as DoozerClient,

    /** Replaces the server (and the raw client) with one started with `options`. */
    async restartWith(options: DoozerServerOptions): Promise<void> {
      await fx.server.close();
      fx.server = await DoozerServer.start({ heartbeatMs: 0, rwSecret: SK, ...options });
      fx.raw = await fx.connect();
    },

    async connect(uri = `${fx.server.uri}&sk=${SK}`, startAt?: 'first'): Promise<DoozerClient> {
      const client = await DoozerClient.connect(uri, {
        reconnect: { initialDelayMs: 5, maxDelayMs: 50 },
        ...(startAt ? { startAt } : {}),
      });
      clients.push(client);
      return client;
    },

    async open(
      name: string,
      address: string,
      opts: { participating?: boolean; client?: DoozerClient } = {},
    ): Promise<ElectionLock> {
      const store = new DoozerElectionStore(opts.client ?? (await fx.connect()));
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
    },

    /** Follows `lock` from `from` until the test ends. */
    follow: (lock: ElectionLock, from: LockVersion): AsyncIterator<LockEvent> =>
      lock.watch(from, watches.signal)[Symbol.asyncIterator](),
  };

  beforeEach(async () => {
    fx.server = await DoozerServer.start({ heartbeatMs: 0, rwSecret: SK });
    fx.raw = await fx.connect();
    watches = new AbortController();
  });

  afterEach(async () => {
    watches.abort();
    for (const l of locks.splice(0)) await l.close();
    for (const c of clients.splice(0)) await c.close();
    await fx.server.close();
  });

  return fx;
}

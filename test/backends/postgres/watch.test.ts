/**
 * Following an election on PostgreSQL: NOTIFY, the periodic read that covers
 * a lost notification, the LISTEN connection's loss as a reset, and the
 * database's clock expiring a silent holder. Real server, real time: every
 * wait is on an event, with generous timeouts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createPostgresStore,
  type PostgresElectionStore,
} from '../../../lib/backends/postgres/index.js';
import { systemClock } from '../../../lib/election/clock.js';
import type {
  ElectionLock,
  LockEvent,
  LockRequest,
  LockVersion,
} from '../../../lib/election/port.js';
import { startPostgres, type PostgresServer } from '../../support/postgres.js';
import { waitFor } from '../../support/wait.js';
import { untilWatchEvent } from '../../support/watch.js';

const CALL = { timeoutMs: 10_000 };
const silent = { log: () => {}, warn: () => {}, error: () => {} };
const request = (
  name: string,
  address: string,
  timing = { leaseMs: 60_000, renewDeadlineMs: 40_000, retryPeriodMs: 30_000 },
): LockRequest => ({
  name,
  address,
  participating: true,
  timing,
  clock: systemClock,
  logger: silent,
});

let server: PostgresServer;
const stores: PostgresElectionStore[] = [];
const aborts: AbortController[] = [];
let seq = 0;
const uniqueName = (): string => `watch-${++seq}`;

async function open(
  name: string,
  address: string,
  timing?: LockRequest['timing'],
): Promise<{ store: PostgresElectionStore; lock: ElectionLock }> {
  const store = await createPostgresStore({ connectionString: server.url, poolSize: 2 });
  stores.push(store);
  return { store, lock: await store.openLock(request(name, address, timing)) };
}

function follow(lock: ElectionLock, from: LockVersion): AsyncIterator<LockEvent> {
  const abort = new AbortController();
  aborts.push(abort);
  return lock.watch(from, abort.signal)[Symbol.asyncIterator]();
}

const isChange =
  (pred: (s: Extract<LockEvent, { kind: 'change' }>['snapshot']) => boolean) => (e: LockEvent) =>
    e.kind === 'change' && pred(e.snapshot);

beforeAll(async () => {
  server = await startPostgres();
}, 180_000);

afterEach(async () => {
  for (const a of aborts.splice(0)) a.abort();
  for (const s of stores.splice(0)) await s.close();
});

afterAll(async () => {
  await server?.stop();
});

describe('postgres watch', () => {
  it('a killed LISTEN connection resets the watch; a new watch follows by NOTIFY again', async () => {
    // A 30 s retry period: within the 20 s waits below only NOTIFY can deliver a change.
    const name = uniqueName();
    const { store, lock: follower } = await open(name, '127.0.0.1:1');
    const { lock: master } = await open(name, '127.0.0.1:2');
    const base = await follower.read(CALL);
    const first = follow(follower, base.version);
    const pending = first.next();
    await waitFor(() => store.listener.subscriberCount > 0, 'the watch to listen');
    const pid = await store.listener.backendPid();
    const killed = await server.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [
      pid,
    ]);
    expect(killed.rows[0]!.ok).toBe(true);
    expect((await pending).value).toMatchObject({ kind: 'reset' });
    expect((await first.next()).done).toBe(true);

    const again = await follower.read(CALL);
    const second = follow(follower, again.version);
    const next = second.next();
    await waitFor(() => store.listener.subscriberCount > 0, 'the watch to listen again');
    expect(await store.listener.backendPid()).not.toBe(pid);
    const won = await master.create((await master.read(CALL)).version, CALL);
    if (won.kind !== 'won') throw new Error('not won');
    expect((await next).value).toMatchObject({
      kind: 'change',
      snapshot: { record: { state: 'held', termId: won.term.termId } },
    });
    expect(await master.release(won.term, CALL)).toBe('released');
    await untilWatchEvent(
      second,
      isChange((s) => s.record?.state === 'released'),
    );
  });

  it('a change whose notification was lost is seen by the periodic read', async () => {
    const name = uniqueName();
    const timing = { leaseMs: 60_000, renewDeadlineMs: 40_000, retryPeriodMs: 200 };
    const { store, lock: follower } = await open(name, '127.0.0.1:1', timing);
    const { lock: master } = await open(name, '127.0.0.1:2', timing);
    const base = await follower.read(CALL);
    const events = follow(follower, base.version);
    const won = await master.create((await master.read(CALL)).version, CALL);
    if (won.kind !== 'won') throw new Error('not won');
    await untilWatchEvent(
      events,
      isChange((s) => s.record?.termId === won.term.termId),
    );
    // The watch's first read is done: what it sees from now on comes by NOTIFY or a later read.
    await waitFor(() => store.stats.reads >= 2, "the watch's first read");
    // A write that sends no NOTIFY (as if the notification were lost): only a read can see it.
    const upd = await server.query(
      `UPDATE public.master_elections SET state = 'released', version = nextval('public.master_elections_seq') WHERE name = $1`,
      [name],
    );
    expect(upd.rowCount).toBe(1);
    const ev = await untilWatchEvent(
      events,
      isChange((s) => s.record?.state === 'released'),
    );
    if (ev.kind !== 'change') throw new Error('unreachable');
    expect(ev.snapshot.record?.termId).toBe(won.term.termId);
    expect((await follower.create(ev.snapshot.version, CALL)).kind).toBe('won');
  });

  it("the database's clock expires a holder that stops renewing: watchers see it, another takes over, the old term cannot renew", async () => {
    const name = uniqueName();
    const timing = { leaseMs: 500, renewDeadlineMs: 300, retryPeriodMs: 30_000 };
    const { lock: master } = await open(name, '127.0.0.1:1', timing);
    const { lock: other } = await open(name, '127.0.0.1:2', timing);
    const base = await other.read(CALL);
    const events = follow(other, base.version);
    const won = await master.create((await master.read(CALL)).version, CALL);
    if (won.kind !== 'won') throw new Error('not won');
    await untilWatchEvent(
      events,
      isChange((s) => s.record?.termId === won.term.termId),
    );
    // No renewal: the lease runs out by now() in the database; the watch reads again then.
    const gone = await untilWatchEvent(
      events,
      isChange((s) => s.record === null),
    );
    if (gone.kind !== 'change') throw new Error('unreachable');
    const db = await server.query<{ expired: boolean }>(
      'SELECT expires_at <= now() AS expired FROM public.master_elections WHERE name = $1',
      [name],
    );
    expect(db.rows[0]!.expired).toBe(true);
    expect((await master.renew(won.term, 1, CALL)).kind).toBe('lost');
    expect(await other.depose(gone.snapshot.version, CALL)).toBe('changed');
    const next = await other.create(gone.snapshot.version, CALL);
    if (next.kind !== 'won') throw new Error('not won');
    expect(next.term.token).toBeGreaterThan(won.term.token);
  });

  it('a table dropped and made again: the next read reports the state lost and a watch resets', async () => {
    const name = uniqueName();
    const timing = { leaseMs: 60_000, renewDeadlineMs: 40_000, retryPeriodMs: 200 };
    const schema = { connectionString: server.url, table: 'replaced' };
    const store = await createPostgresStore(schema);
    stores.push(store);
    const lock = await store.openLock(request(name, '127.0.0.1:1', timing));
    const won = await lock.create((await lock.read(CALL)).version, CALL);
    if (won.kind !== 'won') throw new Error('not won');
    const before = await lock.read(CALL);
    const events = follow(lock, before.version);
    await server.query('DROP TABLE public.replaced');
    const again = await createPostgresStore(schema);
    stores.push(again);
    await again.openLock(request(name, '127.0.0.1:2', timing)); // creates the table anew
    await untilWatchEvent(events, (e) => e.kind === 'reset');
    const after = await lock.read(CALL);
    expect(after.stateLost).toBe(true);
    expect(after.record).toBeNull();
    // The old term and versions write nothing to the new table.
    expect((await lock.renew(won.term, 1, CALL)).kind).toBe('lost');
    expect((await lock.create(before.version, CALL)).kind).toBe('lost');
    const fresh = await lock.create(after.version, CALL);
    if (fresh.kind !== 'won') throw new Error('not won');
    expect(fresh.term.token).toBeGreaterThan(won.term.token);
  });
});

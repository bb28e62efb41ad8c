/**
 * The storage port's contract: one set of tests that every lock must pass.
 * Each backend's test file calls {@link lockContract} with a target that
 * opens stores on a real server (or the in-memory store).
 *
 * The suite exercises locks directly, as the engine would, without the
 * engine's timing rules: a lock never decides on time, so none is needed.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../lib/election/clock.js';
import { ElectionConfigError, LockArgumentError } from '../../lib/election/errors.js';
import type {
  ElectionLock,
  ElectionStore,
  LockCallOptions,
  LockEvent,
  LockRequest,
  LockTerm,
  LockVersion,
} from '../../lib/election/port.js';
import { nextWatchEvent, untilWatchEvent } from '../support/watch.js';

/** A store under test. */
export interface ContractTarget {
  /** A new connection to the store under test, as another process would have (closed by `teardown`). */
  connect(): Promise<ElectionStore>;
  /** Names this store must refuse (beside the empty name), e.g. ones that would alias another election. */
  readonly badNames?: readonly string[];
  /** Makes the open watches of `store` end with a `reset` (or a transient error): TOO_LATE, compaction, a killed connection. */
  forceReset?(store: ElectionStore): Promise<void>;
  /** Stops everything `connect()` opened and the server. */
  teardown(): Promise<void>;
}

const CALL: LockCallOptions = { timeoutMs: 10_000 };
const TIMING = { leaseMs: 10_000, renewDeadlineMs: 7_000, retryPeriodMs: 2_000 };
const silent = { log: () => {}, warn: () => {}, error: () => {} };

let nameSeq = 0;
const uniqueName = (): string => `contract-${process.pid}-${++nameSeq}`;

const request = (name: string, address: string, participating = true): LockRequest => ({
  name,
  address,
  participating,
  timing: TIMING,
  clock: systemClock,
  logger: silent,
});

/** Runs the contract against `setup()`'s target. */
export function lockContract(label: string, setup: () => Promise<ContractTarget>): void {
  describe(`storage port contract: ${label}`, () => {
    let target: ContractTarget;
    const aborts: AbortController[] = [];
    const locks: ElectionLock[] = [];

    beforeEach(async () => {
      target = await setup();
    });

    afterEach(async () => {
      for (const a of aborts.splice(0)) a.abort();
      for (const l of locks.splice(0)) await l.close().catch(() => {});
      await target.teardown();
    });

    async function open(
      name: string,
      address: string,
      participating = true,
    ): Promise<ElectionLock> {
      const store = await target.connect();
      const lock = await store.openLock(request(name, address, participating));
      locks.push(lock);
      return lock;
    }

    function follow(lock: ElectionLock, from: LockVersion): AsyncIterator<LockEvent> {
      const abort = new AbortController();
      aborts.push(abort);
      return lock.watch(from, abort.signal)[Symbol.asyncIterator]();
    }

    async function win(lock: ElectionLock): Promise<LockTerm> {
      const { version } = await lock.read(CALL);
      const r = await lock.create(version, CALL);
      if (r.kind !== 'won') throw new Error(`${lock.toString()} did not win from ${version.key}`);
      return r.term;
    }

    it('rejects a bad election name before anything is written', async () => {
      const store = await target.connect();
      for (const bad of ['', ...(target.badNames ?? [])]) {
        await expect(store.openLock(request(bad, '127.0.0.1:1'))).rejects.toBeInstanceOf(
          ElectionConfigError,
        );
      }
      expect(String(store)).not.toMatch(/password|secret/i);
    });

    it('reads a fresh election as having no master', async () => {
      const lock = await open(uniqueName(), '127.0.0.1:1');
      const read = await lock.read(CALL);
      expect(read.record === null || read.record.state === 'released').toBe(true);
      expect(read.stateLost).toBe(false);
      expect(typeof read.version.key).toBe('string');
      expect(['observer', 'store']).toContain(lock.capabilities.expiry);
      expect(lock.id).not.toBe('');
    });

    it('elects exactly one winner among concurrent creates from the same basis', async () => {
      const name = uniqueName();
      const all = await Promise.all(
        Array.from({ length: 8 }, (_, i) => open(name, `127.0.0.1:${1000 + i}`)),
      );
      const bases = await Promise.all(all.map((l) => l.read(CALL)));
      const results = await Promise.all(all.map((l, i) => l.create(bases[i]!.version, CALL)));
      const winners = results.flatMap((r, i) => (r.kind === 'won' ? [{ r, lock: all[i]! }] : []));
      expect(winners).toHaveLength(1);
      const { r, lock } = winners[0]!;
      if (r.kind !== 'won') throw new Error('unreachable');
      const seen = await all[(all.indexOf(lock) + 1) % all.length]!.read(CALL);
      expect(seen.record).toMatchObject({
        state: 'held',
        holderId: lock.id,
        holder: `127.0.0.1:${1000 + all.indexOf(lock)}`,
        token: r.term.token,
        termId: r.term.termId,
      });
      expect(r.term.token).toBeGreaterThan(0);
    });

    it('renews by compare-and-set, and followers see each renewal', async () => {
      const name = uniqueName();
      const master = await open(name, '127.0.0.1:2001');
      const follower = await open(name, '127.0.0.1:2002');
      const term = await win(master);
      const before = await follower.read(CALL);
      const events = follow(follower, before.version);
      const r1 = await master.renew(term, 1, CALL);
      expect(r1).toMatchObject({ kind: 'renewed', attempt: 1 });
      if (r1.kind !== 'renewed') throw new Error('unreachable');
      expect(r1.term.token).toBe(term.token);
      expect(r1.term.termId).toBe(term.termId);
      if (master.capabilities.expiry === 'observer') {
        expect(r1.term.version.key).not.toBe(term.version.key);
        const ev = await untilWatchEvent(events, (e) => e.kind === 'change');
        if (ev.kind !== 'change') throw new Error('unreachable');
        expect(ev.snapshot.liveness).not.toBe(before.liveness);
        expect(ev.snapshot.record?.termId).toBe(term.termId);
      }
      const r2 = await master.renew(r1.term, 2, CALL);
      expect(r2).toMatchObject({ kind: 'renewed', attempt: 2 });
    });

    it('a release is seen by followers, and one of them takes over at once with a larger token', async () => {
      const name = uniqueName();
      const master = await open(name, '127.0.0.1:3001');
      const followers = await Promise.all([
        open(name, '127.0.0.1:3002'),
        open(name, '127.0.0.1:3003'),
      ]);
      const term = await win(master);
      const views = await Promise.all(followers.map((f) => f.read(CALL)));
      const streams = followers.map((f, i) => follow(f, views[i]!.version));
      expect(await master.release(term, CALL)).toBe('released');
      const freed = await Promise.all(
        streams.map((s) =>
          untilWatchEvent(
            s,
            (e) =>
              e.kind === 'change' &&
              (e.snapshot.record === null || e.snapshot.record.state === 'released'),
          ),
        ),
      );
      const results = await Promise.all(
        followers.map((f, i) => {
          const ev = freed[i]!;
          if (ev.kind !== 'change') throw new Error('unreachable');
          return f.create(ev.snapshot.version, CALL);
        }),
      );
      const won = results.filter((r) => r.kind === 'won');
      expect(won).toHaveLength(1);
      const next = won[0]!;
      if (next.kind !== 'won') throw new Error('unreachable');
      expect(next.term.token).toBeGreaterThan(term.token);
      // The old term is gone: renewing or releasing it again changes nothing.
      expect((await master.renew(term, 1, CALL)).kind).toBe('lost');
      expect(await master.release(term, CALL)).toBe('not-held');
    });

    it('deposes a term only at the version it was seen at; the deposed master loses its next renewal', async () => {
      const name = uniqueName();
      const master = await open(name, '127.0.0.1:4001');
      const other = await open(name, '127.0.0.1:4002');
      const term = await win(master);
      const stale = await other.read(CALL);
      const renewed = await master.renew(term, 1, CALL);
      if (master.capabilities.expiry === 'observer') {
        // A renewal landed since `stale` was read: deposing at it must fail.
        expect(await other.depose(stale.version, CALL)).toBe('changed');
      }
      const current = await other.read(CALL);
      expect(current.record?.termId).toBe(term.termId);
      expect(await other.depose(current.version, CALL)).toBe('deposed');
      expect(await other.depose(current.version, CALL)).toBe('changed');
      const after = await other.read(CALL);
      expect(after.record?.state === 'held' && after.record.termId === term.termId).toBe(false);
      if (renewed.kind !== 'renewed') throw new Error('unreachable');
      expect((await master.renew(renewed.term, 2, CALL)).kind).toBe('lost');
      // The deposed master gives back what is left of its term; then the way is free.
      await master.release(renewed.term, CALL);
      const next = await win(other);
      expect(next.token).toBeGreaterThan(term.token);
    });

    it('fencing tokens grow strictly across terms of different participants', async () => {
      const name = uniqueName();
      const a = await open(name, '127.0.0.1:5001');
      const b = await open(name, '127.0.0.1:5002');
      const tokens: number[] = [];
      for (let i = 0; i < 6; i++) {
        const [winner, loser] = i % 2 === 0 ? [a, b] : [b, a];
        const term = await win(winner);
        tokens.push(term.token);
        if (i % 3 === 2) {
          const seen = await loser.read(CALL);
          expect(await loser.depose(seen.version, CALL)).toBe('deposed');
        }
        await winner.release(term, CALL);
      }
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
    });

    it('a watch from an old version starts with the record as it is now', async () => {
      const name = uniqueName();
      const master = await open(name, '127.0.0.1:6001');
      const follower = await open(name, '127.0.0.1:6002');
      const old = await follower.read(CALL);
      const term = await win(master);
      const events = follow(follower, old.version);
      const ev = await untilWatchEvent(
        events,
        (e) => e.kind === 'change' && e.snapshot.record !== null,
      );
      if (ev.kind !== 'change') throw new Error('unreachable');
      expect(ev.snapshot.record).toMatchObject({ state: 'held', termId: term.termId });
    });

    it('a watch ends quietly when its signal aborts', async () => {
      const lock = await open(uniqueName(), '127.0.0.1:6501');
      const { version } = await lock.read(CALL);
      const abort = new AbortController();
      const iter = lock.watch(version, abort.signal)[Symbol.asyncIterator]();
      const next = iter.next();
      abort.abort();
      const r = await Promise.race([
        next,
        new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 10_000).unref()),
      ]);
      expect(r).toEqual({ done: true, value: undefined });
    });

    it('refuses versions and terms it did not issue, before writing', async () => {
      const a = await open(uniqueName(), '127.0.0.1:7001');
      const b = await open(uniqueName(), '127.0.0.1:7002');
      const term = await win(a);
      const forged = { key: 'forged' } as LockVersion;
      await expect(b.create(forged, CALL)).rejects.toBeInstanceOf(LockArgumentError);
      await expect(b.depose(term.version, CALL)).rejects.toBeInstanceOf(LockArgumentError);
      await expect(b.renew(term, 1, CALL)).rejects.toBeInstanceOf(LockArgumentError);
      await expect(b.release(term, CALL)).rejects.toBeInstanceOf(LockArgumentError);
      expect(b.classify(new LockArgumentError('x', 'y'))).toBe('fatal');
      // Nothing was written to a's election.
      expect((await a.read(CALL)).record?.termId).toBe(term.termId);
      const passive = await open(uniqueName(), '127.0.0.1:7003', false);
      const v = await passive.read(CALL);
      await expect(passive.create(v.version, CALL)).rejects.toBeInstanceOf(LockArgumentError);
    });

    it('closing a lock leaves the store usable for other locks', async () => {
      const name = uniqueName();
      const store = await target.connect();
      const first = await store.openLock(request(name, '127.0.0.1:8001'));
      const second = await store.openLock(request(name, '127.0.0.1:8002'));
      locks.push(second);
      await first.close();
      expect(second.status().connected).toBe(true);
      const term = await win(second);
      expect(term.token).toBeGreaterThan(0);
    });

    it('a store reset ends watches with a reset (or a transient error); a fresh read works', async (ctx) => {
      if (!target.forceReset) return ctx.skip();
      const name = uniqueName();
      const store = await target.connect();
      const lock = await store.openLock(request(name, '127.0.0.1:9001'));
      locks.push(lock);
      const { version } = await lock.read(CALL);
      const iter = follow(lock, version);
      const pending = nextWatchEvent(iter, 20_000).then(
        (r) => ({ ok: true as const, r }),
        (err: unknown) => ({ ok: false as const, err }),
      );
      await target.forceReset(store);
      const outcome = await pending;
      if (outcome.ok) {
        // A change may come first (the reset itself may be a write); the stream must still end in a reset.
        let r = outcome.r;
        while (!r.done && r.value.kind === 'change') r = await nextWatchEvent(iter, 20_000);
        if (!r.done) expect(r.value.kind).toBe('reset');
      } else {
        expect(lock.classify(outcome.err)).toBe('transient');
      }
      const again = await lock.read(CALL);
      expect(typeof again.version.key).toBe('string');
    });
  });
}

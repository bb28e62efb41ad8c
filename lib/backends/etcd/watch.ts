/**
 * Following an election: the keys under its prefix at the version's
 * revision, then a watch from the next revision, the leader recomputed
 * after every batch of events. Compaction, a lost stream (a lost
 * connection, a member that went away) or another cluster end the watch
 * with a `reset`.
 */
import type { Etcd3, IWatchResponse } from 'etcd3';
import type { LockEvent } from '../../election/port.js';
import { toStoreError } from './errors.js';
import {
  leaderOf,
  rangeEnd,
  snapshotOf,
  toCandidate,
  versionKey,
  type CandidateKey,
  type EtcdVersion,
} from './layout.js';

/** What a watch needs of its lock. */
export interface WatchContext {
  readonly client: Etcd3;
  /** Identifies the store in versions and terms. */
  readonly owner: object;
  /** The election prefix (`<prefix><name>/`). */
  readonly election: string;
  readonly redact: (s: string) => string;
  /** Bound on the initial read, in ms. */
  readonly timeoutMs: number;
  /** Told +1 when etcd confirms the watch, -1 when it ends. */
  readonly established: (delta: 1 | -1) => void;
}

type Item = { kind: 'data'; res: IWatchResponse } | { kind: 'lost'; why: string };

/** The keys under the prefix at revision `rev`, or the reason it cannot be read. */
async function keysAt(
  ctx: WatchContext,
  rev: number,
): Promise<{ keys: Map<string, CandidateKey> } | { reset: string }> {
  const prefix = Buffer.from(ctx.election);
  try {
    const res = await ctx.client.kv.range(
      { key: prefix, range_end: rangeEnd(prefix), revision: rev },
      { deadline: new Date(Date.now() + ctx.timeoutMs) },
    );
    const keys = new Map<string, CandidateKey>();
    for (const kv of res.kvs) {
      const c = toCandidate(ctx.election, kv);
      keys.set(c.key, c);
    }
    return { keys };
  } catch (err) {
    const e = toStoreError(err, 'watch read', ctx.redact);
    if (/compacted/.test(e.message)) return { reset: `history compacted past revision ${rev}` };
    throw e;
  }
}

/** Follows the election after `from` until `signal` aborts, a reset, or an error. */
export async function* watchElection(
  ctx: WatchContext,
  from: EtcdVersion,
  signal: AbortSignal,
): AsyncGenerator<LockEvent> {
  if (signal.aborted) return;
  const start = await keysAt(ctx, from.rev);
  if ('reset' in start) {
    yield { kind: 'reset', reason: start.reset };
    return;
  }
  const keys = start.keys;
  let lastKey = versionKey(from.cluster, leaderOf(keys.values()));
  if (lastKey !== from.key) {
    // The version was issued at this revision; if it disagrees, trust the store.
    yield {
      kind: 'change',
      snapshot: snapshotOf(
        ctx.owner,
        ctx.election,
        from.cluster,
        from.rev,
        leaderOf(keys.values()),
      ),
    };
  }

  const queue: Item[] = [];
  let wake: (() => void) | null = null;
  const push = (item: Item): void => {
    queue.push(item);
    wake?.();
    wake = null;
  };
  const onAbort = (): void => {
    wake?.();
    wake = null;
  };
  signal.addEventListener('abort', onAbort);
  let stream: Awaited<ReturnType<Etcd3['watchClient']['watch']>> | undefined;
  let counted = false;
  try {
    stream = await ctx.client.watchClient.watch();
    stream.on('data', (res) => push({ kind: 'data', res }));
    stream.on('error', (err) => push({ kind: 'lost', why: ctx.redact(err.message) }));
    stream.on('end', () => push({ kind: 'lost', why: 'the watch stream ended' }));
    const prefix = Buffer.from(ctx.election);
    stream.write({
      create_request: { key: prefix, range_end: rangeEnd(prefix), start_revision: from.rev + 1 },
    });
    for (;;) {
      if (signal.aborted) return;
      const item = queue.shift();
      if (!item) {
        await new Promise<void>((r) => (wake = r));
        continue;
      }
      if (item.kind === 'lost') {
        yield { kind: 'reset', reason: `watch stream lost: ${item.why}` };
        return;
      }
      const res = item.res;
      if (res.created && !counted) {
        counted = true;
        ctx.established(1);
      }
      if (res.compact_revision && res.compact_revision !== '0') {
        yield { kind: 'reset', reason: `history compacted up to revision ${res.compact_revision}` };
        return;
      }
      if (res.canceled) {
        yield {
          kind: 'reset',
          reason: `watch canceled by etcd: ${res.cancel_reason || 'no reason'}`,
        };
        return;
      }
      if (res.header && res.header.cluster_id !== from.cluster) {
        yield { kind: 'reset', reason: 'connected to another etcd cluster' };
        return;
      }
      if (!res.events || res.events.length === 0) continue;
      let rev = 0;
      for (const ev of res.events) {
        const key = ev.kv.key.toString('utf8');
        rev = Math.max(rev, Number(ev.kv.mod_revision));
        if (ev.type === 'Delete') keys.delete(key);
        else keys.set(key, toCandidate(ctx.election, ev.kv));
      }
      const leader = leaderOf(keys.values());
      const key = versionKey(from.cluster, leader);
      if (key === lastKey) continue;
      lastKey = key;
      yield {
        kind: 'change',
        snapshot: snapshotOf(ctx.owner, ctx.election, from.cluster, rev, leader),
      };
    }
  } catch (err) {
    if (signal.aborted) return;
    throw toStoreError(err, 'watch', ctx.redact);
  } finally {
    signal.removeEventListener('abort', onAbort);
    if (counted) ctx.established(-1);
    stream?.cancel();
  }
}

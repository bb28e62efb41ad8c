/**
 * Every election the live view finds, and a timeline of its terms as the
 * viewer observes them: who was master from when to when, the gaps with no
 * master, and how each term ended. Times are the viewer's own clock (ms
 * since the epoch, advanced monotonically); nothing here reads a time
 * written by another process.
 *
 * How a term ended is read from the order of changes (see
 * docs/election-protocol.md, _Stepping down_ and _Following_):
 *
 * - `released`: the lease was released for this term, then the election file
 *   was deleted (resign, close, or a forced election on the master itself);
 * - `forced`: the election file was deleted while the lease was held for
 *   this term, and the holder released it afterwards (a forced election by
 *   another process);
 * - `deposed`: the election file was deleted while the lease was held, and
 *   the next term began with nobody releasing it (the master had stopped
 *   renewing: dead, frozen or cut off);
 * - `deleted`: the election file was deleted and there was no lease of this
 *   term (a Go client's election);
 * - `replaced`: the election file was overwritten (a Go client taking over);
 * - `unobserved`: it ended while the viewer was out of touch with the store;
 * - `pending`: deleted with the lease still held; `forced` or `deposed` once
 *   the viewer sees what comes next.
 */
import { readLease } from './layout.js';

export type EndReason =
  'released' | 'forced' | 'deposed' | 'deleted' | 'replaced' | 'unobserved' | 'pending';

/** One term, or one gap with no master. */
export interface TimelineEntry {
  /** Unique within the viewer, increasing. */
  readonly id: number;
  readonly kind: 'term' | 'gap';
  /** Term: the election file's rev, which is the term number and its fencing token. */
  readonly token?: number;
  /** Term: the master's address (the election file's body). */
  readonly master?: string;
  /** When it began, on the viewer's clock. */
  readonly start: number;
  /** False when it began before the viewer could see it (at its first read, or while out of touch). */
  readonly startSeen: boolean;
  /** When it ended; absent while it lasts. */
  end?: number;
  reason?: EndReason;
  /** Term: when the viewer last saw the lease of this term change (its last renewal). */
  renewedAt?: number;
}

/** The lease file as the page gets it. */
export interface LeaseView {
  readonly rev: number;
  /** False when the body is not a lease record (empty, garbled, foreign). */
  readonly valid: boolean;
  readonly state?: 'held' | 'released';
  readonly term?: number;
  readonly holder?: string;
  readonly seq?: number;
}

/** One election as the page gets it. */
export interface ElectionView {
  readonly name: string;
  /** The current master (election file), or null when there is none. */
  readonly master: { readonly address: string; readonly token: number } | null;
  readonly lease: LeaseView | null;
  /** When the viewer last saw the lease change (or first saw it), on its clock. */
  readonly leaseChangedAt: number | null;
  /** `now - leaseChangedAt` when the view was made. */
  readonly leaseAgeMs: number | null;
  /** Time between the last two renewals of the lease's term the viewer saw (its renewal period, roughly). */
  readonly leaseIntervalMs: number | null;
  /** The retained entries, oldest first (a delta holds only the changed ones). */
  readonly timeline: TimelineEntry[];
  /** Id of the oldest retained entry: the page drops older ones. */
  readonly firstId: number;
}

/** A file's state: its rev and body, or null when it is missing. */
export type FileState = { readonly rev: number; readonly text: string } | null;

interface Election {
  readonly name: string;
  master: { address: string; token: number } | null;
  lease: LeaseView | null;
  /** The lease file's body (cut), to tell a rewrite at the same rev from no change. */
  leaseBody: string;
  leaseChangedAt: number | null;
  leaseIntervalMs: number | null;
  timeline: TimelineEntry[];
  dirty: Set<TimelineEntry>;
}

export interface TrackerLimits {
  /** Most elections tracked; more are ignored (`truncated`). */
  readonly maxElections: number;
  /** Most timeline entries kept per election; the oldest go first. */
  readonly maxTimeline: number;
  /** Longest master address or lease body kept (longer ones are cut with "…"). */
  readonly maxValueChars: number;
}

export class ElectionTracker {
  readonly #elections = new Map<string, Election>();
  #nextId = 1;
  #truncated = false;

  constructor(readonly limits: TrackerLimits) {}

  /** Some elections are not tracked: there are more than `maxElections`. */
  get truncated(): boolean {
    return this.#truncated;
  }

  get size(): number {
    return this.#elections.size;
  }

  /**
   * Records what the viewer sees of an election's file at `at`: a change it
   * saw (`seen`), or a difference found by a fresh read (`seen: false`; the
   * first read, or after being out of touch). True when anything changed.
   */
  observe(
    kind: 'election' | 'lease',
    name: string,
    file: FileState,
    at: number,
    seen: boolean,
  ): boolean {
    let e = this.#elections.get(name);
    if (!e) {
      if (file === null) return false;
      if (this.#elections.size >= this.limits.maxElections) {
        this.#truncated = true;
        return false;
      }
      e = {
        name,
        master: null,
        lease: null,
        leaseBody: '',
        leaseChangedAt: null,
        leaseIntervalMs: null,
        timeline: [],
        dirty: new Set(),
      };
      this.#elections.set(name, e);
    }
    const changed =
      kind === 'election'
        ? this.#observeElection(e, file, at, seen)
        : this.#observeLease(e, file, at);
    if (e.master === null && !open(e)) this.#add(e, { kind: 'gap', start: at, startSeen: seen });
    return changed;
  }

  /** Names of the elections tracked. */
  names(): string[] {
    return [...this.#elections.keys()];
  }

  /** One election with its whole retained timeline. */
  view(name: string, now: number): ElectionView | undefined {
    const e = this.#elections.get(name);
    return e && this.#view(e, now, e.timeline);
  }

  /** One election with only the timeline entries changed since the last delta. */
  delta(name: string, now: number): ElectionView | undefined {
    const e = this.#elections.get(name);
    if (!e) return undefined;
    const entries = e.timeline.filter((t) => e.dirty.has(t));
    e.dirty.clear();
    return this.#view(e, now, entries);
  }

  /** Every election with its whole timeline, by name. */
  snapshot(now: number): ElectionView[] {
    return [...this.#elections.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((e) => this.#view(e, now, e.timeline));
  }

  /** Forgets which entries changed (after a snapshot went to everyone). */
  markSent(): void {
    for (const e of this.#elections.values()) e.dirty.clear();
  }

  #view(e: Election, now: number, timeline: TimelineEntry[]): ElectionView {
    return {
      name: e.name,
      master: e.master && { ...e.master },
      lease: e.lease && { ...e.lease },
      leaseChangedAt: e.leaseChangedAt,
      leaseAgeMs: e.leaseChangedAt === null ? null : Math.max(0, now - e.leaseChangedAt),
      leaseIntervalMs: e.leaseIntervalMs,
      timeline: timeline.map((t) => ({ ...t })),
      firstId: e.timeline[0]?.id ?? this.#nextId,
    };
  }

  #observeElection(e: Election, file: FileState, at: number, seen: boolean): boolean {
    const prev = e.master;
    if (file === null) {
      if (prev === null) return false;
      e.master = null;
      this.#close(e, at, seen ? endReason(e.lease, prev.token) : 'unobserved');
      this.#add(e, { kind: 'gap', start: at, startSeen: seen });
      return true;
    }
    const address = this.#cut(file.text);
    if (prev && prev.token === file.rev && prev.address === address) return false;
    if (prev) this.#close(e, at, seen ? 'replaced' : 'unobserved');
    const pending = lastPending(e);
    if (pending) this.#settle(e, pending, 'deposed');
    const gap = open(e);
    if (gap) this.#close(e, at);
    e.master = { address, token: file.rev };
    const held = e.lease?.state === 'held' && e.lease.term === file.rev;
    this.#add(e, {
      kind: 'term',
      token: file.rev,
      master: address,
      start: at,
      startSeen: seen,
      ...(held ? { renewedAt: at } : {}),
    });
    return true;
  }

  #observeLease(e: Election, file: FileState, at: number): boolean {
    const before = e.lease;
    if (file === null) {
      if (before === null) return false;
      e.lease = null;
      e.leaseBody = '';
    } else {
      const body = this.#cut(file.text);
      if (before && before.rev === file.rev && e.leaseBody === body) return false;
      const r = readLease(file.text);
      e.lease = r
        ? {
            rev: file.rev,
            valid: true,
            state: r.state,
            term: r.term,
            holder: this.#cut(r.holder),
            seq: r.seq,
          }
        : { rev: file.rev, valid: false };
      e.leaseBody = body;
    }
    const lease = e.lease;
    // A renewal period: between two renewals of one term, not across a handover.
    const renewal =
      before?.state === 'held' && lease?.state === 'held' && before.term === lease.term;
    e.leaseIntervalMs = renewal && e.leaseChangedAt !== null ? at - e.leaseChangedAt : null;
    e.leaseChangedAt = at;
    const term = open(e);
    if (term?.kind === 'term' && lease?.state === 'held' && lease.term === term.token) {
      term.renewedAt = at;
      e.dirty.add(term);
    }
    const pending = lastPending(e);
    if (pending && lease?.valid) {
      if (lease.term === pending.token && lease.state === 'released')
        this.#settle(e, pending, 'forced');
      else if (lease.term !== pending.token) this.#settle(e, pending, 'deposed');
    }
    return true;
  }

  #add(e: Election, entry: Omit<TimelineEntry, 'id'>): void {
    const t: TimelineEntry = { id: this.#nextId++, ...entry };
    e.timeline.push(t);
    e.dirty.add(t);
    while (e.timeline.length > this.limits.maxTimeline) e.dirty.delete(e.timeline.shift()!);
  }

  /** Ends the open entry (a term with `reason`; a gap without). */
  #close(e: Election, at: number, reason?: EndReason): void {
    const t = open(e);
    if (!t) return;
    t.end = at;
    if (t.kind === 'term' && reason) t.reason = reason;
    e.dirty.add(t);
  }

  #settle(e: Election, t: TimelineEntry, reason: EndReason): void {
    t.reason = reason;
    e.dirty.add(t);
  }

  #cut(text: string): string {
    const max = this.limits.maxValueChars;
    return text.length > max ? `${text.slice(0, max)}…` : text;
  }
}

/** The entry that has not ended yet, if any (always the last one). */
function open(e: Election): TimelineEntry | undefined {
  const last = e.timeline.at(-1);
  return last && last.end === undefined ? last : undefined;
}

/** The last ended term, if it still waits to learn whether it was forced or deposed. */
function lastPending(e: Election): TimelineEntry | undefined {
  for (let i = e.timeline.length - 1; i >= 0; i--) {
    const t = e.timeline[i]!;
    if (t.kind === 'term' && t.end !== undefined) return t.reason === 'pending' ? t : undefined;
  }
  return undefined;
}

/** How a term whose election file was just deleted ended, judged by its lease. */
function endReason(lease: LeaseView | null, token: number): EndReason {
  if (!lease?.valid || lease.term !== token) return 'deleted';
  return lease.state === 'released' ? 'released' : 'pending';
}

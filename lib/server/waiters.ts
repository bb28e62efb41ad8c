/**
 * Requests waiting for a future rev: WAITs (a glob) and reads pinned to a
 * rev the store has not reached (no glob). Indexed so that a write only
 * looks at the waiters that can match it: waiters whose rev is still ahead
 * sit in a per-rev bucket until the store reaches it; eligible WAITs are
 * keyed by their literal path, or by the directory their glob is rooted at.
 */
import type { Glob } from './glob.js';
import type { StoreEvent } from './store.js';

/** One waiting request. */
export interface Waiter {
  /** The first rev whose event may answer it. */
  readonly rev: number;
  /** `null`: any event answers it (a read waiting for the store to reach `rev`). */
  readonly glob: Glob | null;
  /** Called once, with the event that answers it, after it left the index. */
  readonly fire: (event: StoreEvent) => void;
}

/** Fires waiters an event answers (they have left the index already). */
export type Deliver = (fired: readonly Waiter[], event: StoreEvent) => void;

/** Fires them all, now, in order. */
export const deliverNow: Deliver = (fired, event) => {
  for (const w of fired) w.fire(event);
};

/** The index of waiting requests. */
export class WaiterIndex {
  private readonly future = new Map<number, Set<Waiter>>();
  private readonly anyNext = new Set<Waiter>();
  private readonly exact = new Map<string, Set<Waiter>>();
  private readonly rooted = new Map<string, Set<Waiter>>();
  private readonly home = new Map<Waiter, Set<Waiter>>();
  private readonly keyOf = new Map<Set<Waiter>, [Map<unknown, Set<Waiter>>, unknown]>();

  constructor(
    /** How fired waiters are called (the server spreads a large fan-out over several turns). */
    private readonly deliver: Deliver = deliverNow,
  ) {}

  /** Waiting requests. */
  get size(): number {
    return this.home.size;
  }

  /**
   * Adds `w`; `currentRev` is the store rev now. A waiter whose rev is at or
   * below `currentRev + 1` becomes eligible for the very next event.
   */
  add(w: Waiter, currentRev: number): void {
    if (w.rev > currentRev + 1) this.put(this.future, w.rev, w);
    else this.enable(w);
  }

  /** Removes `w` if it is still waiting. */
  remove(w: Waiter): void {
    const set = this.home.get(w);
    if (!set) return;
    this.home.delete(w);
    set.delete(w);
    if (set.size === 0 && set !== this.anyNext) {
      const key = this.keyOf.get(set);
      if (key) key[0].delete(key[1]);
      this.keyOf.delete(set);
    }
  }

  /** Drops every waiter without firing it. */
  clear(): void {
    this.future.clear();
    this.anyNext.clear();
    this.exact.clear();
    this.rooted.clear();
    this.home.clear();
    this.keyOf.clear();
  }

  /**
   * Fires every waiter `event` answers (through `deliver`: maybe not all
   * at once, but none of them is in the index any more when this returns).
   * Call after the store applied it.
   */
  dispatch(event: StoreEvent): void {
    const due = this.future.get(event.rev);
    if (due) {
      for (const w of [...due]) {
        this.remove(w);
        this.enable(w);
      }
    }
    const fired: Waiter[] = [];
    for (const w of this.anyNext) fired.push(w);
    const exact = this.exact.get(event.path);
    if (exact) for (const w of exact) fired.push(w);
    const path = event.path;
    this.collect(this.rooted.get(''), path, fired);
    for (let i = path.indexOf('/', 1); i > 0; i = path.indexOf('/', i + 1)) {
      this.collect(this.rooted.get(path.slice(0, i)), path, fired);
    }
    for (const w of fired) this.remove(w);
    if (fired.length > 0) this.deliver(fired, event);
  }

  private collect(set: Set<Waiter> | undefined, path: string, out: Waiter[]): void {
    if (set) for (const w of set) if (w.glob!.match(path)) out.push(w);
  }

  private enable(w: Waiter): void {
    if (!w.glob) {
      this.anyNext.add(w);
      this.home.set(w, this.anyNext);
    } else if (w.glob.literal) {
      this.put(this.exact, w.glob.pattern, w);
    } else {
      this.put(this.rooted, w.glob.prefix, w);
    }
  }

  private put<K>(map: Map<K, Set<Waiter>>, key: K, w: Waiter): void {
    let set = map.get(key);
    if (!set) {
      set = new Set();
      map.set(key, set);
      this.keyOf.set(set, [map, key]);
    }
    set.add(w);
    this.home.set(w, set);
  }
}

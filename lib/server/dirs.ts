/**
 * The directory index of the embedded server's store: every directory's
 * sorted entry names and the number of files below it, now, and the log of
 * entry changes of the last `history` revs, so that a directory reads as of
 * any rev in the window with a binary search (whether it existed, how many
 * entries it had) or one pass over its entries (which), never by replaying
 * the history of the whole tree.
 */
import { Deque } from './deque.js';
import { BoundedCache } from './bounded-cache.js';

/** `dir` + `/` + `name`. */
export function childPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** The proper ancestors of a valid path, root first, each with the child name that leads on. */
export function forEachAncestor(path: string, f: (dir: string, name: string) => void): void {
  let dir = '/';
  let start = 1;
  while (start < path.length) {
    let end = path.indexOf('/', start);
    if (end < 0) end = path.length;
    f(dir, path.slice(start, end));
    dir = path.slice(0, end);
    start = end + 1;
  }
}

/** Index of the first name in the sorted `names` that is not before `name`. */
function lowerBound(names: readonly string[], name: string): number {
  let lo = 0;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (names[mid]! < name) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One directory now. */
class Dir {
  /** Files anywhere below. */
  files = 0;
  /** Entry names, sorted (byte order: names are ASCII). Copied before a change once handed out. */
  private names: string[] = [];
  private handedOut = false;

  get size(): number {
    return this.names.length;
  }

  /** Adds `name`; false when it was there already. */
  add(name: string): boolean {
    const i = lowerBound(this.names, name);
    if (this.names[i] === name) return false;
    this.own().splice(i, 0, name);
    return true;
  }

  /** Removes `name`; false when it was not there. */
  remove(name: string): boolean {
    const i = lowerBound(this.names, name);
    if (this.names[i] !== name) return false;
    this.own().splice(i, 1);
    return true;
  }

  /** The sorted names; the array is never changed afterwards. */
  list(): readonly string[] {
    this.handedOut = true;
    return this.names;
  }

  private own(): string[] {
    if (this.handedOut) {
      this.names = this.names.slice();
      this.handedOut = false;
    }
    return this.names;
  }
}

/** One entry change of a directory. */
interface DirChange {
  readonly rev: number;
  readonly name: string;
  readonly added: boolean;
  /** Entries the directory had before the change. */
  readonly sizeBefore: number;
}

/**
 * A directory as of a past rev, described against its names at some later
 * moment: those names, minus the ones added since (by position), plus the
 * ones removed since. Never changes (`now` is a list no one changes).
 */
interface PastDir {
  readonly now: readonly string[];
  /** Positions in `now` of the names that were not there then, ascending. */
  readonly gone: readonly number[];
  /** Names that were there then and are not in `now`, sorted. */
  readonly back: readonly string[];
}

/** Past directories described, reused while they are asked for. */
const PAST_DIR_ENTRIES = 64;
const PAST_DIR_NAMES = 400_000;

/** Every directory of the tree, now and over the history window. */
export class DirIndex {
  private readonly dirs = new Map<string, Dir>([['/', new Dir()]]);
  private readonly log = new Map<string, Deque<DirChange>>();
  /** Every change in rev order, to trim the per-directory logs. */
  private readonly order = new Deque<readonly [string, DirChange]>();
  private readonly past = new BoundedCache<PastDir>(
    PAST_DIR_ENTRIES,
    PAST_DIR_NAMES,
    (d) => d.now.length + d.back.length,
  );

  /** Changes logged (for tests). */
  get changes(): number {
    return this.order.length;
  }

  isDir(path: string): boolean {
    return this.dirs.has(path);
  }

  /** Sorted entry names of `path` now (empty when it is not a directory). */
  list(path: string): readonly string[] {
    return this.dirs.get(path)?.list() ?? [];
  }

  /** Entries of `path` now. */
  entries(path: string): number {
    return this.dirs.get(path)?.size ?? 0;
  }

  /** Files below `dir` now (0 when it is not a directory). */
  filesBelow(dir: string): number {
    return this.dirs.get(dir)?.files ?? 0;
  }

  /** Records a new file at `path` (its ancestors become directories), at `rev`. */
  addFile(path: string, rev: number): void {
    forEachAncestor(path, (dir, name) => {
      let d = this.dirs.get(dir);
      if (!d) {
        d = new Dir();
        this.dirs.set(dir, d);
      }
      d.files++;
      if (d.add(name)) this.record(dir, { rev, name, added: true, sizeBefore: d.size - 1 });
    });
  }

  /** Records that the file at `path` is gone (emptied directories go with it), at `rev`. */
  removeFile(path: string, rev: number): void {
    const chain: [Dir, string, string][] = [];
    forEachAncestor(path, (dir, name) => {
      const d = this.dirs.get(dir)!;
      d.files--;
      chain.push([d, dir, name]);
    });
    for (let i = chain.length - 1; i >= 0; i--) {
      const [d, dir, name] = chain[i]!;
      const child = childPath(dir, name);
      if (child === path || this.dirs.get(child)?.files === 0) {
        this.dirs.delete(child);
        if (d.remove(name)) this.record(dir, { rev, name, added: false, sizeBefore: d.size + 1 });
      }
    }
  }

  /** Forgets the changes older than `oldest` (the oldest rev still readable). */
  trim(oldest: number): void {
    for (let first = this.order.first; first && first[1].rev < oldest; first = this.order.first) {
      this.order.shift();
      const changes = this.log.get(first[0])!;
      changes.shift();
      if (changes.length === 0) this.log.delete(first[0]);
    }
  }

  /** True when `path` was a directory as of `rev` (in the window). */
  isDirAt(path: string, rev: number): boolean {
    if (path === '/') return true;
    const next = this.firstChangeAfter(path, rev);
    return next ? next.sizeBefore > 0 : this.dirs.has(path);
  }

  /** Entries of `path` as of `rev`. */
  entriesAt(path: string, rev: number): number {
    const next = this.firstChangeAfter(path, rev);
    return next ? next.sizeBefore : this.entries(path);
  }

  /** Sorted entry names of `path` as of `rev` (one pass over them). */
  listAt(path: string, rev: number): readonly string[] {
    const d = this.pastDir(path, rev);
    if (!d) return this.list(path);
    const gone = new Set(d.gone);
    return merge(
      d.now.filter((_, i) => !gone.has(i)),
      d.back,
    );
  }

  /**
   * The `k`-th entry name (in sorted order) of `path` as of `rev`, or
   * `undefined` past the end: two binary searches once the directory's
   * changes since `rev` are sorted out (and cached), whatever its size.
   */
  entryAt(path: string, rev: number, k: number): string | undefined {
    const d = this.pastDir(path, rev);
    if (!d) return this.list(path)[k];
    const { back } = d;
    const kept = d.now.length - d.gone.length;
    if (k < 0 || k >= kept + back.length) return undefined;
    // The first k + 1 names take j from `back` and k + 1 - j from the kept ones.
    let lo = Math.max(0, k + 1 - kept);
    let hi = Math.min(k + 1, back.length);
    while (lo < hi) {
      const j = (lo + hi) >>> 1;
      if (back[j]! < keptAt(d, k - j)) lo = j + 1;
      else hi = j;
    }
    const i = k + 1 - lo;
    if (i === 0) return back[lo - 1];
    const last = keptAt(d, i - 1);
    return lo === 0 || last > back[lo - 1]! ? last : back[lo - 1];
  }

  /** How `path` was as of `rev` against its names now; `undefined` when it has not changed since. */
  private pastDir(path: string, rev: number): PastDir | undefined {
    const changes = this.log.get(path);
    const from = changes ? changes.firstWhere((c) => c.rev > rev) : 0;
    if (!changes || from === changes.length) return undefined;
    const key = `${rev} ${path}`;
    const cached = this.past.get(key);
    if (cached) return cached;
    // The first change after `rev` of each name says whether it was there then.
    const then = new Map<string, boolean>();
    for (let i = from; i < changes.length; i++) {
      const c = changes.at(i)!;
      if (!then.has(c.name)) then.set(c.name, !c.added);
    }
    const now = this.list(path);
    const gone: number[] = [];
    const back: string[] = [];
    for (const [name, was] of then) {
      const at = lowerBound(now, name);
      const isNow = now[at] === name;
      if (isNow && !was) gone.push(at);
      else if (!isNow && was) back.push(name);
    }
    const d: PastDir = { now, gone: gone.sort((a, b) => a - b), back: back.sort() };
    this.past.set(key, d);
    return d;
  }

  private firstChangeAfter(path: string, rev: number): DirChange | undefined {
    const changes = this.log.get(path);
    return changes?.at(changes.firstWhere((c) => c.rev > rev));
  }

  private record(dir: string, change: DirChange): void {
    let changes = this.log.get(dir);
    if (!changes) {
      changes = new Deque();
      this.log.set(dir, changes);
    }
    changes.push(change);
    this.order.push([dir, change]);
  }
}

/** The `i`-th name of `d.now` that is not gone. */
function keptAt(d: PastDir, i: number): string {
  // gone[t] - t names are kept before gone[t]: skip every gone position with at most i of them.
  let lo = 0;
  let hi = d.gone.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (d.gone[mid]! - mid <= i) lo = mid + 1;
    else hi = mid;
  }
  return d.now[i + lo]!;
}

/** The sorted union of two sorted lists without common names. */
function merge(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) out.push(a[i]! < b[j]! ? a[i++]! : b[j++]!);
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
}

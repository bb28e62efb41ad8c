/**
 * WALK's matches: the files matching a glob in a tree as of one rev, in the
 * reference's walk order, found by a traversal that can stop at a deadline
 * and go on later (a large tree takes several slices), and kept in a
 * bounded cache, since a client walks one glob offset after offset.
 */
import { childPath } from './dirs.js';
import type { Glob } from './glob.js';
import { BoundedCache } from './bounded-cache.js';
import type { Job } from './slices.js';
import type { Snapshot, Store } from './store.js';

/** Nodes visited between two looks at the clock. */
const NODES_PER_CHECK = 256;
/** Match lists kept, and the paths they may hold in all. */
const CACHE_ENTRIES = 16;
const CACHE_PATHS = 200_000;

interface Frame {
  readonly dir: string;
  readonly entries: number;
  next: number;
  readonly depth: number;
}

/**
 * A depth-first walk of `snap` from the glob's fixed prefix: directories'
 * entries in sorted order, so `/a/x` comes before `/a-b`. `snap` must keep
 * reading as of its rev between steps (a {@link Store.at} view does).
 */
export class Walk {
  private readonly stack: Frame[] = [];
  private readonly found: string[] = [];

  constructor(
    private readonly snap: Snapshot,
    private readonly glob: Glob,
  ) {
    const start = glob.literal ? glob.pattern : glob.prefix || '/';
    this.visit(start, start === '/' ? 0 : start.split('/').length - 1);
  }

  /**
   * Walks on until the end, or until `deadline` (`performance.now()`)
   * passed, looking at the clock every 256 nodes (so a small tree is walked
   * in one step). Returns the matches once done, `undefined` before.
   */
  step(deadline: number): readonly string[] | undefined {
    let visited = 0;
    while (this.stack.length > 0) {
      const top = this.stack[this.stack.length - 1]!;
      if (top.next === top.entries) {
        this.stack.pop();
        continue;
      }
      const name = this.snap.entry(top.dir, top.next++)!;
      this.visit(childPath(top.dir, name), top.depth + 1);
      if (++visited % NODES_PER_CHECK === 0 && performance.now() > deadline) return undefined;
    }
    return this.found;
  }

  private visit(path: string, depth: number): void {
    const { snap, glob } = this;
    if (snap.isDir(path)) {
      if (glob.depth !== undefined && depth >= glob.depth) return;
      // Entries one by one, never a whole listing: a directory may be huge.
      this.stack.push({ dir: path, entries: snap.entries(path), next: 0, depth });
    } else if (glob.match(path) && snap.file(path)) {
      this.found.push(path);
    }
  }
}

/** Match lists by rev and pattern (a tree as of a rev never changes). */
export class WalkCache {
  private readonly lists = new BoundedCache<readonly string[]>(CACHE_ENTRIES, CACHE_PATHS);

  get(rev: number, pattern: string): readonly string[] | undefined {
    return this.lists.get(`${rev} ${pattern}`);
  }

  set(rev: number, pattern: string, found: readonly string[]): void {
    this.lists.set(`${rev} ${pattern}`, found);
  }

  clear(): void {
    this.lists.clear();
  }
}

/**
 * A WALK whose matches are not cached: the tree as of `rev` is walked in
 * slices (the view reads as of `rev` while the store moves on), then `done`
 * gets the view and the matches. Should `rev` leave the history meanwhile,
 * a pinned WALK gets `done(undefined, [])` (TOO_LATE) and an unpinned one
 * starts again at the current rev.
 */
export class WalkJob implements Job {
  private walk: Walk;

  constructor(
    private readonly store: Store,
    private readonly cache: WalkCache,
    private readonly glob: Glob,
    private rev: number,
    private readonly pinned: boolean,
    private readonly done: (snap: Snapshot | undefined, matches: readonly string[]) => void,
  ) {
    this.walk = new Walk(store.at(rev), glob);
  }

  step(deadline: number): boolean {
    if (this.rev < this.store.oldestRev) {
      if (this.pinned) {
        this.done(undefined, []);
        return true;
      }
      this.rev = this.store.rev;
      this.walk = new Walk(this.store.at(this.rev), this.glob);
    }
    const found = this.walk.step(deadline);
    if (!found) return false;
    this.cache.set(this.rev, this.glob.pattern, found);
    this.done(this.store.at(this.rev), found);
    return true;
  }
}

/**
 * The in-memory store of the embedded server: a tree of files, one
 * store-wide rev, and the last `history` revs of changes, with the exact
 * mutation rules of the reference server (doozerd 0.9.0-alpha).
 */
import { Deque } from './deque.js';
import type { Glob } from './glob.js';

/** The rev a SET or DEL sends to write unconditionally. */
export const CLOBBER = -1;
/** The rev a directory reports (STAT). */
export const DIR_REV = -2;
/** Where failed writes are recorded, as the reference server does. */
export const ERROR_PATH = '/ctl/err';

/**
 * A file body as stored: small bodies as a latin1 string (one byte per
 * character: a compact V8 string instead of an ArrayBuffer per file), larger
 * ones as their own copy of the bytes. {@link storedBytes} makes one, {@link
 * bodyBytes} reads one back.
 */
export type Body = string | Uint8Array;

/** Bodies up to this size are kept as latin1 strings. */
const STRING_BODY_MAX = 4096;

/** A stored copy of `bytes` (which may be a view into a socket chunk). */
export function storedBytes(bytes: Uint8Array): Body {
  if (bytes.length > STRING_BODY_MAX) return new Uint8Array(bytes);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** The bytes of a stored body. */
export function bodyBytes(body: Body): Uint8Array {
  return typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
}

/** A file as of some rev. */
export interface FileState {
  /** The body; its `length` is its size in bytes. */
  readonly value: Body;
  /** The rev of the file's last change. */
  readonly rev: number;
}

/** One applied rev. */
export interface StoreEvent {
  readonly rev: number;
  /**
   * `nop` for a NOP (path `/`), `set` also for a failed write (path
   * `/ctl/err`; the only set that may leave the tree unchanged, see
   * {@link Store.set}).
   */
  readonly kind: 'set' | 'del' | 'nop';
  readonly path: string;
  /** The new body for a set; empty otherwise. */
  readonly value: Body;
  /** The file before this event (`undefined`: missing). Not meaningful for a nop. */
  readonly prev: FileState | undefined;
}

/** Why a write failed after consuming a rev. */
export type WriteError = 'REV_MISMATCH' | 'ISDIR' | 'NOTDIR';

/** What the reference server writes to `/ctl/err` for each failure (Go error strings). */
export const WRITE_ERROR_TEXT: Record<WriteError, string> = {
  REV_MISMATCH: 'rev mismatch',
  ISDIR: 'is a directory',
  NOTDIR: 'not a directory',
};

/** The outcome of a SET or DEL that got a rev. */
export type WriteResult =
  | { readonly ok: true; readonly rev: number }
  | { readonly ok: false; readonly error: WriteError; readonly rev: number };

/** A read-only view of the tree as of one rev. */
export interface Snapshot {
  readonly rev: number;
  /** The file at `path`, or `undefined` (missing, a directory or not a valid path). */
  file(path: string): FileState | undefined;
  /** True when `path` is a directory (the root always is). */
  isDir(path: string): boolean;
  /** The sorted entry names of the directory `path` (empty when it is not one). */
  list(path: string): readonly string[];
}

const EMPTY = '';

/** `dir` + `/` + `name`. */
export function childPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** The proper ancestors of a valid path, root first, each with the child name that leads on. */
function forEachAncestor(path: string, f: (dir: string, name: string) => void): void {
  let dir = '/';
  let start = 1;
  while (start < path.length) {
    let end = path.indexOf('/', start);
    if (end < 0) end = path.length;
    const name = path.slice(start, end);
    f(dir, name);
    dir = path.slice(0, end);
    start = end + 1;
  }
}

class Dir {
  readonly children = new Set<string>();
  /** Files anywhere below. */
  files = 0;
  private sorted: string[] | null = null;

  add(name: string): void {
    if (!this.children.has(name)) {
      this.children.add(name);
      this.sorted = null;
    }
  }

  remove(name: string): void {
    if (this.children.delete(name)) this.sorted = null;
  }

  list(): readonly string[] {
    this.sorted ??= [...this.children].sort();
    return this.sorted;
  }
}

/** Store-wide counters, for tests and the benchmark. */
export interface StoreStats {
  readonly files: number;
  readonly historyEvents: number;
}

/**
 * The tree, the rev and the history. Every mutation gets the next rev and is
 * handed to `onEvent` after it is applied.
 */
export class Store implements Snapshot {
  /** The current store rev. */
  rev = 0;
  private readonly files = new Map<string, FileState>();
  private readonly dirs = new Map<string, Dir>([['/', new Dir()]]);
  private readonly log = new Deque<StoreEvent>();
  private readonly byPath = new Map<string, Deque<StoreEvent>>();
  private readonly views = new Map<string, Snapshot>();

  constructor(
    /** How many revs of history to keep (TOO_LATE past it). */
    readonly history: number,
    private readonly onEvent: (event: StoreEvent) => void = () => {},
  ) {}

  /** The oldest rev a request may still be pinned to. */
  get oldestRev(): number {
    return Math.max(1, this.rev - this.history + 1);
  }

  get stats(): StoreStats {
    return { files: this.files.size, historyEvents: this.log.length };
  }

  // ---- Snapshot of the current rev ----

  file(path: string): FileState | undefined {
    return this.files.get(path);
  }

  isDir(path: string): boolean {
    return this.dirs.has(path);
  }

  list(path: string): readonly string[] {
    return this.dirs.get(path)?.list() ?? [];
  }

  /** The tree as of `rev` (between {@link oldestRev} and {@link rev}). */
  at(rev: number): Snapshot {
    if (rev >= this.rev) return this;
    const key = `${rev}@${this.rev}`;
    let view = this.views.get(key);
    if (!view) {
      view = new PastView(this, rev, this.changesSince(rev));
      if (this.views.size >= 8) this.views.delete(this.views.keys().next().value!);
      this.views.set(key, view);
    }
    return view;
  }

  /** The file at `path` as of `rev` (between {@link oldestRev} and {@link rev}). */
  fileAt(path: string, rev: number): FileState | undefined {
    const events = this.byPath.get(path);
    if (events) {
      const i = events.firstWhere((e) => e.rev > rev);
      const e = events.at(i);
      if (e) return e.prev;
    }
    return this.files.get(path);
  }

  /** The events from `rev` (>= {@link oldestRev}) to now, oldest first. */
  *eventsFrom(rev: number): Iterable<StoreEvent> {
    const start = this.log.firstWhere((e) => e.rev >= rev);
    for (let i = start; i < this.log.length; i++) yield this.log.at(i)!;
  }

  /** The first event at or after `rev` (>= {@link oldestRev}) for which `glob` matches its path. */
  firstMatch(glob: Glob, rev: number): StoreEvent | undefined {
    if (glob.literal) {
      const events = this.byPath.get(glob.pattern);
      return events?.at(events.firstWhere((e) => e.rev >= rev));
    }
    for (const e of this.eventsFrom(rev)) if (glob.match(e.path)) return e;
    return undefined;
  }

  /** For every path changed after `rev`: its state as of `rev`. */
  private changesSince(rev: number): Map<string, FileState | undefined> {
    const changes = new Map<string, FileState | undefined>();
    const start = this.log.firstWhere((e) => e.rev > rev);
    for (let i = this.log.length - 1; i >= start; i--) {
      const e = this.log.at(i)!;
      if (e.kind !== 'nop') changes.set(e.path, e.prev);
    }
    return changes;
  }

  /** Files below `dir` now (0 when it is not a directory). */
  filesBelow(dir: string): number {
    return this.dirs.get(dir)?.files ?? 0;
  }

  // ---- Mutations ----

  /**
   * SET with the reference rules: NOTDIR below a file, REV_MISMATCH unless
   * `rev` is -1 or >= the file rev (missing 0, directory -2), ISDIR on a
   * directory. The path must be valid. A failure consumes a rev too and is
   * recorded in `/ctl/err`.
   */
  set(path: string, rev: number, value: Body): WriteResult {
    if (this.belowFile(path)) return this.fail('NOTDIR');
    const check = this.checkRev(path, rev);
    if (check) return this.fail(check);
    return { ok: true, rev: this.commitSet(path, value) };
  }

  /** DEL with the reference rules (like SET without NOTDIR); deleting a missing file succeeds. */
  del(path: string, rev: number): WriteResult {
    const check = this.checkRev(path, rev);
    if (check) return this.fail(check);
    const prev = this.files.get(path);
    if (prev) this.removeFile(path);
    return {
      ok: true,
      rev: this.commit({ rev: this.rev + 1, kind: 'del', path, value: EMPTY, prev }),
    };
  }

  /** A NOP: consumes a rev (an event at path `/`). */
  nop(): number {
    return this.commit({
      rev: this.rev + 1,
      kind: 'nop',
      path: '/',
      value: EMPTY,
      prev: undefined,
    });
  }

  private checkRev(path: string, rev: number): WriteError | undefined {
    const isDir = this.dirs.has(path);
    const current = isDir ? DIR_REV : (this.files.get(path)?.rev ?? 0);
    if (rev !== CLOBBER && rev < current) return 'REV_MISMATCH';
    if (isDir) return 'ISDIR';
    return undefined;
  }

  /** True when a proper ancestor of `path` is a file. */
  private belowFile(path: string): boolean {
    let below = false;
    forEachAncestor(path, (dir) => {
      if (dir !== '/' && this.files.has(dir)) below = true;
    });
    return below;
  }

  private fail(error: WriteError): WriteResult {
    const text = WRITE_ERROR_TEXT[error];
    if (!this.dirs.has(ERROR_PATH) && !this.belowFile(ERROR_PATH)) {
      return { ok: false, error, rev: this.commitSet(ERROR_PATH, text) };
    }
    // A client turned /ctl/err into a directory (or /ctl into a file). The
    // reference still records the failure as a set of /ctl/err (its tree
    // node then holds a value and entries at once, which this tree cannot
    // represent): the event is logged and reported to waiters as usual,
    // and the tree is left as it is.
    const rev = this.commit({
      rev: this.rev + 1,
      kind: 'set',
      path: ERROR_PATH,
      value: text,
      prev: undefined,
    });
    return { ok: false, error, rev };
  }

  private commitSet(path: string, value: Body): number {
    const rev = this.rev + 1;
    const prev = this.files.get(path);
    if (!prev) {
      forEachAncestor(path, (dir, name) => {
        let d = this.dirs.get(dir);
        if (!d) {
          d = new Dir();
          this.dirs.set(dir, d);
        }
        d.files++;
        d.add(name);
      });
    }
    this.files.set(path, { value, rev });
    return this.commit({ rev, kind: 'set', path, value, prev });
  }

  private removeFile(path: string): void {
    this.files.delete(path);
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
        d.remove(name);
      }
    }
  }

  private commit(event: StoreEvent): number {
    this.rev = event.rev;
    this.log.push(event);
    let events = this.byPath.get(event.path);
    if (!events) {
      events = new Deque();
      this.byPath.set(event.path, events);
    }
    events.push(event);
    this.trim();
    this.views.clear();
    this.onEvent(event);
    return event.rev;
  }

  private trim(): void {
    const oldest = this.oldestRev;
    for (let e = this.log.first; e && e.rev < oldest; e = this.log.first) {
      this.log.shift();
      const events = this.byPath.get(e.path)!;
      events.shift();
      if (events.length === 0) this.byPath.delete(e.path);
    }
  }
}

/** The tree as of a past rev: the current tree with the later changes undone. */
class PastView implements Snapshot {
  /** Per directory: files below at `rev` minus files below now. */
  private readonly delta = new Map<string, number>();
  /** Per directory: entry names that lead to a file that existed at `rev`. */
  private readonly extra = new Map<string, Set<string>>();
  private readonly lists = new Map<string, readonly string[]>();

  constructor(
    private readonly store: Store,
    readonly rev: number,
    private readonly changes: Map<string, FileState | undefined>,
  ) {
    for (const [path, then] of changes) {
      if (path === '/') continue;
      const d = (then ? 1 : 0) - (store.file(path) ? 1 : 0);
      forEachAncestor(path, (dir, name) => {
        if (d !== 0) this.delta.set(dir, (this.delta.get(dir) ?? 0) + d);
        if (then) {
          let names = this.extra.get(dir);
          if (!names) {
            names = new Set();
            this.extra.set(dir, names);
          }
          names.add(name);
        }
      });
    }
  }

  file(path: string): FileState | undefined {
    return this.changes.has(path) ? this.changes.get(path) : this.store.file(path);
  }

  isDir(path: string): boolean {
    if (path === '/') return true;
    return this.store.filesBelow(path) + (this.delta.get(path) ?? 0) > 0;
  }

  list(path: string): readonly string[] {
    let names = this.lists.get(path);
    if (names) return names;
    if (!this.isDir(path)) return [];
    const candidates = new Set(this.store.list(path));
    for (const name of this.extra.get(path) ?? []) candidates.add(name);
    names = [...candidates]
      .filter((name) => {
        const child = childPath(path, name);
        return this.file(child) !== undefined || this.isDir(child);
      })
      .sort();
    this.lists.set(path, names);
    return names;
  }
}

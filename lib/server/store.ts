/**
 * The in-memory store of the embedded server: a tree of files, one
 * store-wide rev, and the last `history` revs of changes, with the exact
 * mutation rules of the reference server (doozerd 0.9.0-alpha).
 */
import { Deque } from './deque.js';
import { DirIndex, forEachAncestor } from './dirs.js';
import type { Glob } from './glob.js';

export { childPath } from './dirs.js';

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
  /** How many entries the directory `path` has (0 when it is not one). */
  entries(path: string): number;
  /** The `k`-th entry name of the directory `path` in sorted order, `undefined` past the end. */
  entry(path: string, k: number): string | undefined;
}

const EMPTY = '';

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
  /** The directories, now and over the history window. */
  readonly dirs = new DirIndex();
  private readonly log = new Deque<StoreEvent>();
  private readonly byPath = new Map<string, Deque<StoreEvent>>();

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
    return this.dirs.isDir(path);
  }

  list(path: string): readonly string[] {
    return this.dirs.list(path);
  }

  entries(path: string): number {
    return this.dirs.entries(path);
  }

  entry(path: string, k: number): string | undefined {
    return this.dirs.list(path)[k];
  }

  /**
   * The tree as of `rev` (between {@link oldestRev} and {@link rev}). It
   * costs nothing to make, each read a binary search in that path's history
   * (a listing one pass over the directory), and it keeps reading as of
   * `rev` while the store moves on, as long as `rev` stays in the window.
   */
  at(rev: number): Snapshot {
    return new PastView(this, rev);
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
    const isDir = this.dirs.isDir(path);
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
    if (!this.dirs.isDir(ERROR_PATH) && !this.belowFile(ERROR_PATH)) {
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
    if (!prev) this.dirs.addFile(path, rev);
    this.files.set(path, { value, rev });
    return this.commit({ rev, kind: 'set', path, value, prev });
  }

  private removeFile(path: string): void {
    this.files.delete(path);
    this.dirs.removeFile(path, this.rev + 1);
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
    this.dirs.trim(oldest);
  }
}

/** The tree as of a rev in the window: each read undoes the later changes of what it reads. */
class PastView implements Snapshot {
  constructor(
    private readonly store: Store,
    readonly rev: number,
  ) {}

  file(path: string): FileState | undefined {
    return this.store.fileAt(path, this.rev);
  }

  isDir(path: string): boolean {
    return this.store.dirs.isDirAt(path, this.rev);
  }

  list(path: string): readonly string[] {
    return this.store.dirs.listAt(path, this.rev);
  }

  entries(path: string): number {
    return this.store.dirs.entriesAt(path, this.rev);
  }

  entry(path: string, k: number): string | undefined {
    return this.store.dirs.entryAt(path, this.rev, k);
  }
}

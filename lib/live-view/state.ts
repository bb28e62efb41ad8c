/**
 * What the live view knows of the store (the bounded tree and the
 * elections), fed by the follower, and the messages it sends the pages: a
 * snapshot when a page connects or after a fresh read, then updates.
 * Changes are coalesced per path and per election and flushed at most every
 * `flushMs`, so a busy store costs the pages a bounded number of messages.
 */
import type { DoozerEvent, DoozerWalkEntry } from '../doozer/index.js';
import { ElectionTracker, type ElectionView } from './elections.js';
import { electionFileOf } from './layout.js';
import { StoreMirror, type FileView, type TreeView } from './mirror.js';

/** The bounds of what the live view keeps. */
export interface LiveLimits {
  readonly maxFiles: number;
  readonly maxValueBytes: number;
  readonly maxElections: number;
  readonly maxTimeline: number;
}

/** Sent when a page connects, and to every page after a fresh read of the store. */
export interface SnapshotMessage {
  /** The viewer's clock when sent (ms since the epoch); every time in the message is on it. */
  readonly now: number;
  /** The last store rev the viewer has seen. */
  readonly rev: number;
  /** The viewer is in touch with the store. */
  readonly connected: boolean;
  readonly tree: TreeView;
  readonly elections: ElectionView[];
  /** Some elections are not tracked (more than `maxElections`). */
  readonly electionsTruncated: boolean;
  readonly maxTimeline: number;
}

/** The changes since the last message. */
export interface UpdateMessage {
  readonly now: number;
  readonly rev: number;
  /** Changed files; `file: null` when it was deleted (or is no longer shown). */
  readonly files: { readonly path: string; readonly file: FileView | null }[];
  readonly treeTruncated: boolean;
  /** Changed elections, each with only its changed timeline entries. */
  readonly elections: ElectionView[];
}

/** The viewer lost touch with the store; it reads it again once it is back. */
export interface StatusMessage {
  readonly now: number;
  readonly connected: false;
  readonly message: string;
}

export type LiveMessage =
  | { readonly event: 'snapshot'; readonly data: SnapshotMessage }
  | { readonly event: 'update'; readonly data: UpdateMessage }
  | { readonly event: 'status'; readonly data: StatusMessage };

/** A fresh read of the whole store at one rev, fed file by file. */
export interface StoreRead {
  file(entry: DoozerWalkEntry): void;
  /** The read is complete: it replaces what was known. */
  done(): void;
}

export class LiveState {
  #rev = 0;
  #connected = false;
  #mirror: StoreMirror;
  readonly #tracker: ElectionTracker;
  readonly #files = new Map<string, FileView | null>();
  readonly #elections = new Set<string>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(
    readonly limits: LiveLimits,
    private readonly now: () => number,
    private readonly publish: (message: LiveMessage) => void,
    private readonly flushMs: number,
  ) {
    this.#mirror = new StoreMirror(limits.maxFiles, limits.maxValueBytes);
    this.#tracker = new ElectionTracker({
      maxElections: limits.maxElections,
      maxTimeline: limits.maxTimeline,
      maxValueChars: limits.maxValueBytes,
    });
  }

  get rev(): number {
    return this.#rev;
  }

  stats(): { files: number; elections: number } {
    return { files: this.#mirror.size, elections: this.#tracker.size };
  }

  /** Begins a fresh read at `rev`; what is found replaces what was known once `done()`. */
  read(rev: number): StoreRead {
    const mirror = new StoreMirror(this.limits.maxFiles, this.limits.maxValueBytes);
    const found = new Map<string, { election?: DoozerWalkEntry; lease?: DoozerWalkEntry }>();
    return {
      file: (entry) => {
        mirror.set(entry.path, entry.rev, entry.value);
        const ref = electionFileOf(entry.path);
        if (ref && (found.has(ref.name) || found.size < this.limits.maxElections)) {
          found.set(ref.name, { ...found.get(ref.name), [ref.kind]: entry });
        }
      },
      done: () => {
        const at = this.now();
        for (const name of new Set([...this.#tracker.names(), ...found.keys()])) {
          const files = found.get(name);
          for (const kind of ['election', 'lease'] as const) {
            const entry = files?.[kind];
            this.#tracker.observe(
              kind,
              name,
              entry ? { rev: entry.rev, text: entry.text } : null,
              at,
              false,
            );
          }
        }
        this.#mirror = mirror;
        this.#rev = Math.max(rev, 0);
        this.#connected = true;
        this.#files.clear();
        this.#elections.clear();
        this.#tracker.markSent();
        this.publish({ event: 'snapshot', data: this.snapshot() });
      },
    };
  }

  /** A change seen on the WAIT stream. */
  changed(ev: DoozerEvent): void {
    this.#rev = ev.rev;
    if (ev.isSet) {
      const file = this.#mirror.set(ev.path, ev.rev, ev.value);
      if (file) this.#files.set(ev.path, file);
    } else if (ev.isDel && this.#mirror.delete(ev.path)) {
      this.#files.set(ev.path, null);
    }
    const ref = electionFileOf(ev.path);
    if (ref && (ev.isSet || ev.isDel)) {
      const file = ev.isSet ? { rev: ev.rev, text: ev.text } : null;
      if (this.#tracker.observe(ref.kind, ref.name, file, this.now(), true)) {
        this.#elections.add(ref.name);
      }
    }
    this.#schedule();
  }

  /** The viewer lost touch with the store. */
  disconnected(reason: string): void {
    if (!this.#connected) return;
    this.#connected = false;
    this.flush();
    this.publish({
      event: 'status',
      data: { now: this.now(), connected: false, message: reason },
    });
  }

  snapshot(): SnapshotMessage {
    const now = this.now();
    return {
      now,
      rev: this.#rev,
      connected: this.#connected,
      tree: this.#mirror.snapshot(),
      elections: this.#tracker.snapshot(now),
      electionsTruncated: this.#tracker.truncated,
      maxTimeline: this.limits.maxTimeline,
    };
  }

  /** Sends the pending changes now. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const now = this.now();
    const elections: ElectionView[] = [];
    for (const name of this.#elections) {
      const view = this.#tracker.delta(name, now);
      if (view) elections.push(view);
    }
    const files = [...this.#files].map(([path, file]) => ({ path, file }));
    this.#files.clear();
    this.#elections.clear();
    this.publish({
      event: 'update',
      data: { now, rev: this.#rev, files, treeTruncated: this.#mirror.truncated, elections },
    });
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => this.flush(), this.flushMs);
  }
}

/**
 * The request semantics of the embedded server, independent of sockets: one
 * store, its waiters, the node's identity and secrets, and one function per
 * verb that behaves as the reference server (doozerd 0.9.0-alpha) does.
 */
import { create, isFieldSet } from '@bufbuild/protobuf';
import {
  Err,
  FLAG_DEL,
  FLAG_SET,
  RequestSchema,
  ResponseSchema,
  Verb,
  isValidPath,
  type Request,
  type Response,
} from '../wire/index.js';
import { compileGlob, GlobError, type Glob } from './glob.js';
import {
  DEFAULT_MAX_PATH_BYTES,
  DEFAULT_MAX_PATH_DEPTH,
  pathOverLimit,
  type PathLimits,
} from './request-limits.js';
import {
  bodyBytes,
  DIR_REV,
  Store,
  storedBytes,
  type Body,
  type Snapshot,
  type StoreEvent,
} from './store.js';
import { SlicedQueue, type Job } from './slices.js';
import { WalkCache, WalkJob } from './walk.js';
import { WaiterIndex, type Waiter } from './waiters.js';

/** The per-connection state a request runs against. */
export interface Session {
  /** May read (GET, WAIT, STAT, GETDIR, WALK). */
  raccess: boolean;
  /** May write (SET, DEL, NOP). */
  waccess: boolean;
  /** Requests of this connection that are not answered yet. */
  readonly pending: Set<Waiter>;
  /** Their tags, kept only with {@link EngineOptions.checkTags} (which makes them unique). */
  readonly pendingTags: Set<number>;
  /** Sends an answer. */
  reply(response: Response): void;
  /**
   * Runs a request that may take several slices: its `step` is called, now
   * and on later turns, until it answers; the session's later requests wait
   * for it (so it answers in order).
   */
  runJob(job: Job): void;
}

/** What an {@link Engine} is built from. */
export interface EngineOptions {
  readonly history: number;
  readonly nodeId: string;
  readonly rwSecret: string;
  readonly roSecret: string;
  /**
   * Answer TAG_IN_USE to a request reusing the tag of one still waiting on
   * the same connection. doozerd 0.9 does not check tags, so this is off by
   * default.
   */
  readonly checkTags?: boolean;
  /** Longest path or glob a request may carry (BAD_PATH past it). Default 4096. */
  readonly maxPathBytes?: number;
  /** Most components of a path or glob (BAD_PATH past it). Default 64. */
  readonly maxPathDepth?: number;
}

/** The answer fields of one response (revs as numbers). */
interface Answer {
  flags?: number;
  rev?: number;
  path?: string;
  value?: Body;
  len?: number;
  errCode?: Err;
  errDetail?: string;
}

const EMPTY = new Uint8Array(0);
const PERMISSION_DENIED: Answer = { errCode: Err.OTHER, errDetail: 'permission denied' };
const F = RequestSchema.field;
/** A fan-out answer costs one unit plus one per this many bytes of value (kernel copies). */
const FAN_OUT_BYTES_PER_UNIT = 16 * 1024;

/** The semantics of one server node. */
export class Engine {
  readonly store: Store;
  /** Fired waiters not called yet: a large fan-out is spread over several turns. */
  private readonly fanOut = new SlicedQueue<readonly [Waiter, StoreEvent]>(([w, event]) => {
    w.fire(event);
    return 1 + event.value.length / FAN_OUT_BYTES_PER_UNIT;
  });
  readonly waiters = new WaiterIndex((fired, event) => {
    for (const w of fired) this.fanOut.push([w, event]);
    this.fanOut.drain();
  });
  private readonly rw: Buffer;
  private readonly ro: Buffer;
  private readonly selfValue: Uint8Array;
  private readonly walks = new WalkCache();
  /** The path limits every request is held to. */
  readonly limits: PathLimits;

  constructor(readonly options: EngineOptions) {
    this.limits = {
      maxPathBytes: options.maxPathBytes ?? DEFAULT_MAX_PATH_BYTES,
      maxPathDepth: options.maxPathDepth ?? DEFAULT_MAX_PATH_DEPTH,
    };
    this.store = new Store(options.history, (event) => this.waiters.dispatch(event));
    this.rw = Buffer.from(options.rwSecret);
    this.ro = Buffer.from(options.roSecret);
    this.selfValue = Buffer.from(options.nodeId);
  }

  /** Requests not answered yet: waiting in the index, or fired and about to be written. */
  get waiting(): number {
    return this.waiters.size + this.fanOut.length;
  }

  /** Opens a session as the reference does: as if it had sent an empty secret. */
  open(session: Session): void {
    this.grant(session, EMPTY);
  }

  /** Frees what a closed session still waits for. */
  close(session: Session): void {
    for (const w of session.pending) this.waiters.remove(w);
    session.pending.clear();
    session.pendingTags.clear();
  }

  /** Drops every waiter. */
  dispose(): void {
    this.waiters.clear();
    this.fanOut.clear();
    this.walks.clear();
  }

  /** Runs one request; the answer goes to `session.reply`, now or when it is due. */
  handle(session: Session, req: Request): void {
    const overLimit = isFieldSet(req, F.path) ? pathOverLimit(req.path, this.limits) : undefined;
    if (overLimit !== undefined) {
      session.reply(respond(req, { errCode: Err.BAD_PATH, errDetail: overLimit }));
      return;
    }
    if (this.options.checkTags && session.pendingTags.has(req.tag)) {
      session.reply(respond(req, { errCode: Err.TAG_IN_USE }));
      return;
    }
    const answer = this.run(session, req);
    if (answer) session.reply(respond(req, answer));
  }

  private run(s: Session, req: Request): Answer | undefined {
    if (!isFieldSet(req, F.verb)) return { errCode: Err.UNKNOWN_VERB };
    switch (req.verb) {
      case Verb.REV:
        return { rev: this.store.rev };
      case Verb.SELF:
        return { value: this.selfValue };
      case Verb.ACCESS:
        return this.grant(s, req.value) ? {} : PERMISSION_DENIED;
      case Verb.GET:
        return this.get(s, req);
      case Verb.SET:
        return this.set(s, req);
      case Verb.DEL:
        return this.del(s, req);
      case Verb.NOP:
        if (!s.waccess) return PERMISSION_DENIED;
        this.store.nop();
        return {};
      case Verb.WAIT:
        return this.wait(s, req);
      case Verb.STAT:
        return this.stat(s, req);
      case Verb.GETDIR:
        return this.getdir(s, req);
      case Verb.WALK:
        return this.walk(s, req);
      default:
        return { errCode: Err.UNKNOWN_VERB };
    }
  }

  private grant(s: Session, secret: Uint8Array): boolean {
    if (this.rw.equals(secret)) {
      s.raccess = true;
      s.waccess = true;
      return true;
    }
    if (this.ro.equals(secret)) {
      s.raccess = true;
      return true;
    }
    return false;
  }

  private get(s: Session, req: Request): Answer | undefined {
    if (!s.raccess) return PERMISSION_DENIED;
    if (!isFieldSet(req, F.path)) return { errCode: Err.MISSING_ARG };
    const path = req.path;
    return this.atRev(s, req, (snap) => {
      if (snap.isDir(path)) return { errCode: Err.ISDIR };
      const file = snap.file(path);
      return { rev: file?.rev ?? 0, value: file?.value ?? '' };
    });
  }

  private set(s: Session, req: Request): Answer {
    const refused = refuseWrite(s, req);
    if (refused) return refused;
    const result = this.store.set(req.path, Number(req.rev), storedBytes(req.value));
    return result.ok ? { rev: result.rev } : { errCode: Err[result.error] };
  }

  private del(s: Session, req: Request): Answer {
    const refused = refuseWrite(s, req);
    if (refused) return refused;
    const result = this.store.del(req.path, Number(req.rev));
    return result.ok ? {} : { errCode: Err[result.error] };
  }

  private wait(s: Session, req: Request): Answer | undefined {
    if (!s.raccess) return PERMISSION_DENIED;
    if (!isFieldSet(req, F.path) || !isFieldSet(req, F.rev)) return { errCode: Err.MISSING_ARG };
    const glob = globOf(req.path);
    if (!('match' in glob)) return glob;
    const rev = Math.max(1, Number(req.rev));
    if (rev < this.store.oldestRev) return { errCode: Err.TOO_LATE };
    if (rev <= this.store.rev) {
      const event = this.store.firstMatch(glob, rev);
      if (event) return eventAnswer(event);
    }
    this.park(s, req, rev, glob, (event) => eventAnswer(event));
    return undefined;
  }

  private stat(s: Session, req: Request): Answer | undefined {
    if (!s.raccess) return PERMISSION_DENIED;
    const path = req.path; // absent reads as '', a bad path: rev 0, len 0
    return this.atRev(s, req, (snap) => {
      if (!isValidPath(path)) return { rev: 0, len: 0 };
      if (snap.isDir(path)) return { rev: DIR_REV, len: snap.entries(path) };
      const file = snap.file(path);
      return { rev: file?.rev ?? 0, len: file?.value.length ?? 0 };
    });
  }

  private getdir(s: Session, req: Request): Answer | undefined {
    if (!s.raccess) return PERMISSION_DENIED;
    if (!isFieldSet(req, F.path) || !isFieldSet(req, F.offset)) {
      return { errCode: Err.MISSING_ARG };
    }
    const { path, offset } = req;
    return this.atRev(s, req, (snap) => {
      if (!snap.isDir(path)) {
        return { errCode: snap.file(path) ? Err.NOTDIR : Err.NOENT };
      }
      const name = offset >= 0 ? snap.entry(path, offset) : undefined;
      return name === undefined ? { errCode: Err.RANGE } : { path: name };
    });
  }

  private walk(s: Session, req: Request): Answer | undefined {
    if (!s.raccess) return PERMISSION_DENIED;
    if (!isFieldSet(req, F.path) || !isFieldSet(req, F.offset)) {
      return { errCode: Err.MISSING_ARG };
    }
    const glob = globOf(req.path);
    if (!('match' in glob)) return glob;
    const offset = req.offset;
    if (offset < 0) return { errCode: Err.RANGE };
    const pinned = isFieldSet(req, F.rev);
    return this.atRev(s, req, (snap) => {
      const found = this.walks.get(snap.rev, glob.pattern);
      if (found) return walkAnswer(snap, found, offset);
      const done = (then: Snapshot | undefined, matches: readonly string[]): void => {
        const answer = then ? walkAnswer(then, matches, offset) : { errCode: Err.TOO_LATE };
        s.reply(respond(req, answer));
      };
      s.runJob(new WalkJob(this.store, this.walks, glob, snap.rev, pinned, done));
      return undefined;
    });
  }

  /**
   * Runs a read against the tree as of the request's rev: now when it has
   * none, from history for a past rev (TOO_LATE before the window; rev <= 0
   * reads as 1), or, for a rev the store has not reached, once it does.
   */
  private atRev(
    s: Session,
    req: Request,
    read: (snap: Snapshot) => Answer | undefined,
  ): Answer | undefined {
    if (!isFieldSet(req, F.rev)) return read(this.store);
    const rev = Math.max(1, Number(req.rev));
    if (rev < this.store.oldestRev) return { errCode: Err.TOO_LATE };
    if (rev <= this.store.rev) return read(this.store.at(rev));
    // Answered as of `rev` even when the fan-out reaches it a few turns later.
    this.park(s, req, rev, null, () =>
      rev < this.store.oldestRev ? { errCode: Err.TOO_LATE } : read(this.store.at(rev)),
    );
    return undefined;
  }

  private park(
    s: Session,
    req: Request,
    rev: number,
    glob: Glob | null,
    answer: (event: StoreEvent) => Answer | undefined,
  ): void {
    const tag = req.tag;
    const waiter: Waiter = {
      rev,
      glob,
      fire: (event) => {
        s.pending.delete(waiter);
        s.pendingTags.delete(tag);
        const a = answer(event);
        if (a) s.reply(respond(req, a));
      },
    };
    s.pending.add(waiter);
    if (this.options.checkTags) s.pendingTags.add(tag);
    this.waiters.add(waiter, this.store.rev);
  }
}

/** Why a SET/DEL is refused before it gets a rev (no access, missing path or rev, bad path). */
function refuseWrite(s: Session, req: Request): Answer | undefined {
  if (!s.waccess) return PERMISSION_DENIED;
  if (!isFieldSet(req, F.path) || !isFieldSet(req, F.rev)) return { errCode: Err.MISSING_ARG };
  if (!isValidPath(req.path)) return { errCode: Err.BAD_PATH };
  return undefined;
}

function globOf(pattern: string): Glob | Answer {
  try {
    return compileGlob(pattern);
  } catch (e) {
    if (e instanceof GlobError) return { errCode: Err.OTHER, errDetail: e.message };
    throw e;
  }
}

/** The answer to a WALK at `offset` among the matches `found` in `snap`. */
function walkAnswer(snap: Snapshot, found: readonly string[], offset: number): Answer {
  const path = found[offset];
  const file = path === undefined ? undefined : snap.file(path);
  if (path === undefined || !file) return { errCode: Err.RANGE };
  return { path, value: file.value, rev: file.rev, flags: FLAG_SET };
}

function eventAnswer(event: StoreEvent): Answer {
  const flags = event.kind === 'set' ? FLAG_SET : event.kind === 'del' ? FLAG_DEL : 0;
  return { path: event.path, rev: event.rev, value: event.value, flags };
}

/** Builds the response to `req`: its tag echoed (when it had one) and the given fields set. */
export function respond(req: Request, answer: Answer): Response {
  const res = create(ResponseSchema);
  if (isFieldSet(req, F.tag)) res.tag = req.tag;
  if (answer.flags !== undefined) res.flags = answer.flags;
  if (answer.rev !== undefined) res.rev = BigInt(answer.rev);
  if (answer.path !== undefined) res.path = answer.path;
  if (answer.value !== undefined) res.value = bodyBytes(answer.value);
  if (answer.len !== undefined) res.len = answer.len;
  if (answer.errCode !== undefined) res.errCode = answer.errCode;
  if (answer.errDetail !== undefined) res.errDetail = answer.errDetail;
  return res;
}

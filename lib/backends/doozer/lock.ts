/**
 * The Doozer lock: one election as one participant sees and writes it, on
 * the Go package's election file and our lease file beside it. See
 * docs/backends/doozer.md for the layout and the safety argument.
 */
import { inspect } from 'node:util';
import { DoozerConnectionError, DoozerTooLateError } from '../../doozer/errors.js';
import { LockArgumentError } from '../../election/errors.js';
import type {
  CreateResult,
  ElectionLock,
  LockCallOptions,
  LockCapabilities,
  LockErrorKind,
  LockEvent,
  LockRead,
  LockRequest,
  LockSnapshot,
  LockStatus,
  LockTerm,
  LockVersion,
  RenewResult,
} from '../../election/port.js';
import type { ElectionLogger } from '../../election/types.js';
import { classifyDoozerError, describeError } from './errors.js';
import { filesOf, leaseFile, versionKey, type ElectionFiles } from './layout.js';
import {
  Call,
  Session,
  type DoozerLockClient,
  type DoozerTerm,
  type DoozerVersion,
  type Sight,
} from './session.js';
import { Writes } from './writes.js';

/** Doozer keeps no sessions: participants time silent masters, and an empty store proves nothing. */
const CAPABILITIES: LockCapabilities = { expiry: 'observer', absentProvesNoMaster: false };

export class DoozerLock implements ElectionLock {
  readonly backend = 'doozer';
  readonly capabilities = CAPABILITIES;
  readonly id: string;
  private readonly s: Session;
  private readonly writes: Writes;
  private readonly participating: boolean;
  private readonly log: ElectionLogger;
  /** Aborts every watch of this lock when it closes. */
  private readonly closing = new AbortController();

  /** Use {@link DoozerElectionStore.openLock}: it checks the request first. */
  constructor(client: DoozerLockClient, request: LockRequest) {
    this.s = new Session(client, request.name, request.address);
    this.id = this.s.id;
    this.participating = request.participating;
    this.log = request.logger;
    this.writes = new Writes(this.s, request.logger);
  }

  /** Reads `REV` and `SELF`, then both files at that rev, all on one connection. */
  async read(options: LockCallOptions): Promise<LockRead> {
    this.open();
    const call = new Call(options);
    const { client, electionPath, leasePath } = this.s;
    const conn = await this.s.connected(call);
    const [rev, node] = await Promise.all([client.rev(call.on(conn)), client.self(call.on(conn))]);
    const [e, l] = await Promise.all([
      client.get(electionPath, rev, call.on(conn)),
      client.get(leasePath, rev, call.on(conn)),
    ]);
    const files = filesOf(e, l);
    const stateLost = this.s.tookRead(rev, node, files);
    if (stateLost) {
      this.log.warn(
        `election ${this.s.name}: the server's rev went back to ${rev} (it lost its state); every term and version before is void`,
      );
    }
    return { ...this.snapshot(this.s.version(files, conn, rev)), stateLost };
  }

  /**
   * Follows both files with one WAIT on the glob `/ns/service/master*\/<name>`,
   * on the connection the version was learned on. It first reads both files
   * at the current rev and starts with them if they differ from the
   * version, then WAITs from there. It ends with a `reset` on `TOO_LATE`, on
   * a lost or replaced connection, or once a read saw the store lose its
   * state.
   */
  async *watch(from: LockVersion, signal: AbortSignal): AsyncIterable<LockEvent> {
    const v = this.version(from, 'from');
    if (signal.aborted || this.closing.signal.aborted) return;
    const stop = AbortSignal.any([signal, this.closing.signal]);
    // What this watch has seen of the election file, for renewals (known
    // once the first read at the head rev is in; gone when the watch ends).
    const sight: Sight = { conn: v.conn, epoch: v.epoch, stop, at: 0, election: null };
    try {
      yield* this.follow(v, stop, sight);
    } finally {
      this.s.sights.delete(sight);
    }
  }

  /** The body of {@link watch}: keeps `sight` up to date with every step. */
  private async *follow(
    v: DoozerVersion,
    stop: AbortSignal,
    sight: Sight,
  ): AsyncIterable<LockEvent> {
    const pin = { signal: stop, connectionId: v.conn };
    const { client, electionPath, leasePath, glob } = this.s;
    let files = v.files;
    let at = v.rev;
    let first = true;
    for (;;) {
      if (v.epoch !== this.s.epoch) {
        this.s.sights.delete(sight); // it vouches for nothing from here on
        yield { kind: 'reset', reason: 'the store lost its state' };
        return;
      }
      let changed: ElectionFiles | null = null;
      try {
        if (first) {
          first = false;
          // Whatever the version missed (it may come from a write, not a
          // read) shows in the files as they are now.
          const head = await client.rev(pin);
          const [e, l] = await Promise.all([
            client.get(electionPath, head, pin),
            client.get(leasePath, head, pin),
          ]);
          const now = filesOf(e, l);
          if (versionKey(now, v.epoch) !== v.key) changed = now;
          at = Math.max(at, head);
          sight.at = head;
          sight.election = now.election;
          this.s.sights.add(sight);
        } else {
          const ev = await client.wait(glob, at + 1, pin);
          at = ev.rev;
          // Events come in store order: up to this one, nothing else changed.
          sight.at = ev.rev;
          if (ev.path === electionPath)
            sight.election = ev.isDel ? null : { rev: ev.rev, master: ev.text };
          if (ev.path === electionPath) {
            changed = { ...files, election: ev.isDel ? null : { rev: ev.rev, master: ev.text } };
          } else if (ev.path === leasePath) {
            // A deleted lease reads as a missing one (rev 0), as GET shows it.
            changed = { ...files, lease: ev.isDel ? leaseFile(0, '') : leaseFile(ev.rev, ev.text) };
          } // else: another directory matching master*
        }
      } catch (err) {
        this.s.sights.delete(sight);
        if (stop.aborted) return;
        yield this.resetFor(err);
        return;
      }
      if (stop.aborted) return;
      if (changed === null) {
        this.s.saw(at);
        continue;
      }
      files = changed;
      yield { kind: 'change', snapshot: this.snapshot(this.s.version(files, v.conn, at)) };
    }
  }

  async create(basis: LockVersion, options: LockCallOptions): Promise<CreateResult> {
    const b = this.version(basis, 'basis');
    this.mayRun('create');
    this.open();
    if (b.epoch !== this.s.epoch) return { kind: 'lost' };
    return this.writes.create(b, new Call(options));
  }

  async renew(term: LockTerm, attempt: number, options: LockCallOptions): Promise<RenewResult> {
    const t = this.ownTerm(term);
    this.mayRun('renew');
    if (!Number.isSafeInteger(attempt) || attempt < 1) {
      throw new LockArgumentError('attempt', `must be a whole number from 1 (got ${attempt})`);
    }
    this.open();
    if (t.version.epoch !== this.s.epoch) return { kind: 'lost', holder: '' };
    return this.writes.renew(t, attempt, new Call(options));
  }

  async release(term: LockTerm, options: LockCallOptions): Promise<'released' | 'not-held'> {
    const t = this.ownTerm(term);
    this.open();
    return this.writes.release(t, new Call(options));
  }

  async depose(version: LockVersion, options: LockCallOptions): Promise<'deposed' | 'changed'> {
    const v = this.version(version, 'version');
    this.open();
    return this.writes.depose(v, new Call(options));
  }

  classify(err: unknown): LockErrorKind {
    return classifyDoozerError(err);
  }

  status(): LockStatus {
    const state = this.s.client.state;
    return state === 'connected'
      ? { connected: true }
      : { connected: false, detail: `Doozer connection is ${state}` };
  }

  /** Ends this lock's watches; the Doozer client stays open (it was given, not owned). */
  async close(): Promise<void> {
    this.closing.abort();
    await Promise.resolve();
  }

  toString(): string {
    return `doozer election ${JSON.stringify(this.s.name)} at ${this.s.client.uri.toString()}`;
  }

  [inspect.custom](): string {
    return `DoozerLock(${this.toString()})`;
  }

  // ---------------------------------------------------------------- internals

  /** The `reset` a watch ends with after `err`; other errors are thrown. */
  private resetFor(err: unknown): LockEvent {
    if (err instanceof DoozerTooLateError) {
      this.log.warn(`election ${this.s.name}: fell behind the server's history; resyncing`);
      return { kind: 'reset', reason: "fell behind the server's history (TOO_LATE)" };
    }
    if (err instanceof DoozerConnectionError) {
      return { kind: 'reset', reason: `connection lost: ${describeError(err)}` };
    }
    throw err;
  }

  private snapshot(v: DoozerVersion): LockSnapshot {
    return { version: v, ...this.s.describe(v) };
  }

  private open(): void {
    if (this.closing.signal.aborted) {
      throw new LockArgumentError('lock', `${this.toString()} is closed`);
    }
  }

  private mayRun(what: string): void {
    if (!this.participating) {
      throw new LockArgumentError('participating', `a passive participant may not ${what} a term`);
    }
  }

  private version(v: LockVersion, argument: string): DoozerVersion {
    const x = v as Partial<DoozerVersion> | null;
    if (!x || x.session !== this.s || typeof x.key !== 'string' || !x.files) {
      throw new LockArgumentError(argument, `not a version of ${this.toString()}`);
    }
    return x as DoozerVersion;
  }

  private ownTerm(term: LockTerm): DoozerTerm {
    const t = term as Partial<DoozerTerm> | null;
    if (!t || typeof t.nonce !== 'string' || typeof t.seq !== 'number') {
      throw new LockArgumentError('term', `not a term won through ${this.toString()}`);
    }
    this.version(t.version as LockVersion, 'term');
    return t as DoozerTerm;
  }
}

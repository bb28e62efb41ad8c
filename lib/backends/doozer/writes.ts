/**
 * The Doozer lock's writes: take a term (create the election file, then
 * the lease), renew it, give it back, depose someone else's. Every write is
 * a compare-and-set sent only on the connection its rev was learned on; a
 * `REV_MISMATCH` is a conflict, answered by a read, never thrown.
 */
import { DoozerConnectionError, DoozerPermissionError } from '../../doozer/errors.js';
import type { CreateResult, RenewResult } from '../../election/port.js';
import type { ElectionLogger } from '../../election/types.js';
import { describeError, isRevMismatch } from './errors.js';
import {
  heldLease,
  isOwnHeldLease,
  leaseFile,
  newNonce,
  releasedLease,
  termIdOf,
  type ElectionFiles,
} from './layout.js';
import type { Call, DoozerTerm, DoozerVersion, Session } from './session.js';

/** How often a lease write of a new term is tried before the term is given back. */
const TAKE_ATTEMPTS = 3;
/** How often a release re-reads the lease after a conflict. */
const RELEASE_ATTEMPTS = 5;

/** Rethrows anything but a `REV_MISMATCH`. */
const mismatchOnly = (err: unknown): false => {
  if (isRevMismatch(err)) return false;
  throw err;
};

export class Writes {
  constructor(
    private readonly s: Session,
    private readonly log: ElectionLogger,
  ) {}

  /**
   * Takes a term from `basis`: reads the election file (a read costs the
   * server far less than a failed write, so a crowd of candidates makes no
   * write storm), creates it at rev 0 (exactly one creator wins), takes the
   * lease by compare-and-set from the basis's lease rev, and checks that the
   * election file is still the one it created.
   */
  async create(b: DoozerVersion, call: Call): Promise<CreateResult> {
    const { client, electionPath } = this.s;
    const pin = (): ReturnType<Call['on']> => call.on(b.conn);
    const current = await client.get(electionPath, undefined, pin());
    if (current.rev !== 0) {
      // A term given back whose holder has not deleted its election file yet:
      // the lease says it stepped down, so finish the delete for it.
      const seen = b.files.election;
      const l = b.files.lease.record;
      const released =
        seen !== null &&
        current.rev === seen.rev &&
        current.text === seen.master &&
        l?.state === 'released' &&
        l.term === seen.rev;
      if (!released) return { kind: 'lost' };
      const deleted = await client
        .del(electionPath, current.rev, pin())
        .then(() => true, mismatchOnly);
      if (!deleted) return { kind: 'lost' };
    }
    let token: number;
    try {
      token = await client.set(electionPath, 0, this.s.address, pin());
    } catch (err) {
      mismatchOnly(err);
      return { kind: 'lost' };
    }
    this.s.saw(token);
    this.s.createdElection(token);
    const nonce = newNonce();
    const body = heldLease(this.holder(), token, 0, nonce);
    let leaseRev: number;
    try {
      leaseRev = await this.take(token, body, b.files.lease.rev, b.conn, call);
      if (leaseRev !== 0) {
        // The term is ours only if nobody deleted or replaced the election file meanwhile.
        const e = await client.get(electionPath, undefined, pin());
        if (e.rev === token && e.text === this.s.address) {
          const files: ElectionFiles = {
            election: { rev: token, master: this.s.address },
            lease: leaseFile(leaseRev, body),
          };
          const version = this.s.version(files, b.conn, leaseRev);
          const termId = termIdOf(b.epoch, token, this.s.address);
          const term: DoozerTerm = { token, termId, version, nonce, seq: 0 };
          return { kind: 'won', term };
        }
        this.log.debug?.(
          `election ${this.s.name}: the election file of term ${token} changed while its lease was taken; giving it back`,
        );
      }
    } catch (err) {
      await this.giveBack(token, nonce, 0, call, b.conn).catch((e: unknown) =>
        this.failed(`give term ${token} back`, e),
      );
      throw err;
    }
    const lease = leaseRev === 0 ? undefined : { rev: leaseRev, conn: b.conn };
    await this.giveBack(token, nonce, 0, call, b.conn, lease).catch((e: unknown) =>
      this.failed(`give term ${token} back`, e),
    );
    return { kind: 'lost' };
  }

  /**
   * Takes the lease for the new term `token`: a compare-and-set from
   * `basis`. After a conflict or an unanswered write, a read tells what
   * happened: our body (an attempt landed late), a lease released meanwhile
   * (try again from there), or someone else's (give up). Returns the lease
   * rev, 0 when it was not taken.
   */
  private async take(
    token: number,
    body: string,
    basis: number,
    conn: number,
    call: Call,
  ): Promise<number> {
    const { client, leasePath } = this.s;
    for (let attempt = 0; attempt < TAKE_ATTEMPTS; attempt++) {
      try {
        const rev = await client.set(leasePath, basis, body, call.on(conn));
        this.s.saw(rev);
        return rev;
      } catch (err) {
        if (err instanceof DoozerConnectionError || err instanceof DoozerPermissionError) throw err;
      }
      const f = await client.get(leasePath, undefined, call.on(conn));
      if (f.text === body) return f.rev;
      const r = leaseFile(f.rev, f.text).record;
      const free =
        r !== null && (r.state === 'released' || (r.id === this.s.id && r.term !== token));
      if (!free) {
        this.log.warn(
          `election ${this.s.name}: won the election file but the lease is held by ${r?.holder ?? '?'}; giving the election file back`,
        );
        return 0;
      }
      basis = f.rev; // released in between: try again from there
    }
    return 0;
  }

  /**
   * Renews: checks that the election file is still the term's (a deposed or
   * forced-out term is lost, and nothing is written), from what a running
   * watch of this lock has seen of it on the term's connection, or by a read
   * when no watch vouches for it; then writes the lease at the rev of the
   * term's last write, on its connection, with `seq` = `attempt`. (A delete
   * the watch has not delivered yet lets one renewal through: safe, see
   * docs/backends/doozer.md.) A conflict, or a
   * term learned on a connection that is gone, is resolved by reading the
   * lease on the current connection: our own record
   * of a later attempt is a late write that landed (`renewed` with that
   * attempt), our record of the last known one confirms the term (`held`),
   * anything else is `lost`.
   */
  async renew(t: DoozerTerm, attempt: number, call: Call): Promise<RenewResult> {
    const { client, leasePath } = this.s;
    const conn = t.version.conn;
    if (conn === client.connectionId) {
      const seen = this.seenLost(t.token, conn);
      const lost = seen === undefined ? await this.electionLost(t.token, conn, call) : seen;
      if (lost !== null) return lost;
      const body = heldLease(this.holder(), t.token, attempt, t.nonce);
      try {
        const rev = await client.set(leasePath, t.version.files.lease.rev, body, call.on(conn));
        return { kind: 'renewed', term: this.next(t, conn, rev, body, attempt), attempt };
      } catch (err) {
        // Anything but a conflict is retried by the engine, unless the
        // connection was replaced meanwhile: then the read below tells.
        if (err instanceof DoozerPermissionError) throw err;
        if (!isRevMismatch(err) && conn === client.connectionId) throw err;
      }
    }
    const now = await this.s.connected(call);
    const f = await client.get(leasePath, undefined, call.on(now));
    const r = leaseFile(f.rev, f.text).record;
    if (!r || !isOwnHeldLease(r, this.s.id, t.token, t.nonce)) {
      return { kind: 'lost', holder: r?.state === 'held' ? r.holder : '' };
    }
    const lost = await this.electionLost(t.token, now, call);
    if (lost !== null) return lost;
    const term = this.next(t, now, f.rev, f.text, Math.max(t.seq, r.seq));
    return r.seq > t.seq ? { kind: 'renewed', term, attempt: r.seq } : { kind: 'held', term };
  }

  /**
   * Gives a term back: writes `released` over our record (at the rev of our
   * last write; after a conflict or on another connection, at the rev a
   * fresh read shows it at, if it is still ours), then deletes the election
   * file at the term's rev. Release first, so whoever sees the delete finds
   * the lease free.
   */
  async release(t: DoozerTerm, call: Call): Promise<'released' | 'not-held'> {
    if (t.version.epoch !== this.s.epoch) return 'not-held'; // the store that held it is gone
    const { conn, files } = t.version;
    const lease = { rev: files.lease.rev, conn };
    const released = await this.giveBack(t.token, t.nonce, t.seq, call, conn, lease);
    return released ? 'released' : 'not-held';
  }

  /**
   * Ends someone else's term: re-reads both files on the version's
   * connection and, if neither moved, deletes the election file at its rev.
   */
  async depose(v: DoozerVersion, call: Call): Promise<'deposed' | 'changed'> {
    const { client, electionPath, leasePath } = this.s;
    const seen = v.files.election;
    const state = this.s.describe(v).record?.state;
    if (v.epoch !== this.s.epoch || !seen || (state !== 'held' && state !== 'unleased')) {
      return 'changed';
    }
    const [l, e] = await Promise.all([
      client.get(leasePath, undefined, call.on(v.conn)),
      client.get(electionPath, undefined, call.on(v.conn)),
    ]);
    const lease = v.files.lease;
    if (
      e.rev !== seen.rev ||
      e.text !== seen.master ||
      l.rev !== lease.rev ||
      l.text !== lease.text
    ) {
      return 'changed';
    }
    const deposed = await client
      .del(electionPath, seen.rev, call.on(v.conn))
      .then(() => true, mismatchOnly);
    if (!deposed) return 'changed';
    this.log.debug?.(
      `election ${this.s.name}: deleted the election file of ${seen.master} (term ${seen.rev})`,
    );
    return 'deposed';
  }

  // ---------------------------------------------------------------- internals

  private holder(): { holder: string; id: string } {
    return { holder: this.s.address, id: this.s.id };
  }

  /** The term after a write (or a read of our record) at lease rev `rev` on `conn`. */
  private next(t: DoozerTerm, conn: number, rev: number, body: string, seq: number): DoozerTerm {
    const files: ElectionFiles = {
      election: { rev: t.token, master: this.s.address },
      lease: leaseFile(rev, body),
    };
    return { ...t, version: this.s.version(files, conn, rev), seq };
  }

  /**
   * What a running watch on `conn` has seen: `lost` when it saw the election
   * file at or after term `token`'s creation and it is not the term's,
   * `null` (no read needed) when it is the term's, `undefined` when no watch
   * knows (none runs, or it has not caught up with the term's creation).
   */
  private seenLost(token: number, conn: number): RenewResult | null | undefined {
    const sight = this.s.sight(conn);
    if (sight === null || sight.at < token) return undefined;
    const e = sight.election;
    if (e !== null && e.rev === token && e.master === this.s.address) return null;
    return { kind: 'lost', holder: e?.master ?? '' };
  }

  /** `lost` when the election file is no longer term `token`'s (checked on `conn`); else `null`. */
  private async electionLost(token: number, conn: number, call: Call): Promise<RenewResult | null> {
    const e = await this.s.client.get(this.s.electionPath, undefined, call.on(conn));
    if (e.rev === token && e.text === this.s.address) return null;
    return { kind: 'lost', holder: e.rev === 0 ? '' : e.text };
  }

  /**
   * Releases the lease of term `token` if it still holds our record, then
   * deletes the election file (learned on `electionConn`) if it is still the
   * term's. `lease` is where our last write left the lease, for a release
   * without a read. Returns whether it wrote the release.
   */
  private async giveBack(
    token: number,
    nonce: string,
    seq: number,
    call: Call,
    electionConn: number,
    lease?: { readonly rev: number; readonly conn: number },
  ): Promise<boolean> {
    const { client, leasePath, electionPath } = this.s;
    let released = false;
    if (lease && lease.conn === client.connectionId) {
      const body = releasedLease(this.holder(), token, seq);
      try {
        await client.set(leasePath, lease.rev, body, call.on(lease.conn));
        released = true;
      } catch (err) {
        if (!(err instanceof DoozerConnectionError)) mismatchOnly(err);
      }
    }
    for (let i = 0; i < RELEASE_ATTEMPTS && !released; i++) {
      const conn = await this.s.connected(call);
      const f = await client.get(leasePath, undefined, call.on(conn));
      const r = leaseFile(f.rev, f.text).record;
      if (!r || !isOwnHeldLease(r, this.s.id, token, nonce)) break; // not ours (any more)
      const body = releasedLease(this.holder(), token, r.seq);
      released = await client
        .set(leasePath, f.rev, body, call.on(conn))
        .then(() => true, mismatchOnly);
    }
    // The election file's rev is only meaningful on the connection it was
    // learned on: on another, confirm first that the file is the term's.
    let conn = electionConn;
    if (conn !== client.connectionId) {
      conn = await this.s.connected(call);
      const e = await client.get(electionPath, undefined, call.on(conn));
      if (e.rev !== token || e.text !== this.s.address) return released;
    }
    await client.del(electionPath, token, call.on(conn)).catch(mismatchOnly); // a mismatch: not ours any more
    return released;
  }

  /** Logs why a write could not be given back, without throwing. */
  failed(what: string, err: unknown): void {
    this.log.debug?.(`election ${this.s.name}: could not ${what}: ${describeError(err)}`);
  }
}

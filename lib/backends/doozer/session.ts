/**
 * What one Doozer lock knows of the store beyond the files: the connection
 * its revs were learned on, the server node, the highest rev seen, and the
 * counters that tell versions of different store epochs apart. The lock's
 * reads, watches and writes all go through it.
 */
import { randomBytes } from 'node:crypto';
import type { DoozerClient } from '../../doozer/client.js';
import type { RequestOptions } from '../../doozer/types.js';
import type { LockCallOptions, LockRecord, LockTerm, LockVersion } from '../../election/port.js';
import {
  electionGlob,
  electionPath,
  leasePath,
  livenessOf,
  recordOf,
  versionKey,
  type ElectionFiles,
} from './layout.js';

/** What the lock needs of a Doozer client (a `DoozerClient` from `nestjs-master-election/doozer`). */
export type DoozerLockClient = Pick<
  DoozerClient,
  'rev' | 'get' | 'set' | 'del' | 'wait' | 'self' | 'state' | 'connectionId' | 'uri'
>;

/** A version of the Doozer lock: both files as seen at store rev `rev` on connection `conn`. */
export interface DoozerVersion extends LockVersion {
  /** The session that issued it. */
  readonly session: Session;
  /** The connection the revs were learned on: writes based on them go only there. */
  readonly conn: number;
  /** The store rev up to which the files are known: a watch from here WAITs from `rev + 1`. */
  readonly rev: number;
  readonly files: ElectionFiles;
  /** The store epoch (see {@link Session.epoch}). */
  readonly epoch: number;
}

/** A term won through a Doozer lock. */
export interface DoozerTerm extends LockTerm {
  readonly version: DoozerVersion;
  /** Random per term, written in every lease record of the term. */
  readonly nonce: string;
  /** The renewal (attempt) number of the last write of the term known to have landed; 0 for the take. */
  readonly seq: number;
}

/**
 * What a running watch of the lock has seen of the election file: every
 * change up to store rev `at` on connection `conn`, in store epoch `epoch`.
 * A renewal uses it instead of reading the election file again.
 */
export interface Sight {
  readonly conn: number;
  readonly epoch: number;
  /** The watch's stop signal: an aborted watch vouches for nothing, even before it unwinds. */
  readonly stop: AbortSignal;
  at: number;
  election: ElectionFiles['election'];
}

/** One operation's bound: the time left of `timeoutMs`, the caller's signal, a pinned connection. */
export class Call {
  private readonly until: number;
  constructor(private readonly options: LockCallOptions) {
    this.until = performance.now() + options.timeoutMs;
  }

  /** Request options for a request sent only on connection `conn` (any connection when omitted). */
  on(conn?: number): RequestOptions {
    const left = Math.max(1, Math.ceil(this.until - performance.now()));
    const timeoutMs = Number.isFinite(this.options.timeoutMs) ? left : this.options.timeoutMs;
    return {
      timeoutMs,
      ...(this.options.signal ? { signal: this.options.signal } : {}),
      ...(conn === undefined ? {} : { connectionId: conn }),
    };
  }
}

export class Session {
  /** The lock's id: written as `id` in its lease records. */
  readonly id = randomBytes(8).toString('hex');
  readonly electionPath: string;
  readonly leasePath: string;
  readonly glob: string;
  /** Store epoch: moves when the store is seen to have lost its state; versions of an older epoch are void. */
  epoch = 1;
  /** Liveness era: moves with the epoch, and when a missing lease is read from another server node. */
  private era = 0;
  /** The highest store rev seen (reads, events, writes) in this epoch. */
  private storeRev = 0;
  /** The server node (SELF) of the last read. */
  private node = '';
  /** The highest election-file rev seen in this era. */
  private electionRev = 0;
  /** Revs at which this lock created the election file (recent ones). */
  private readonly created = new Set<number>();
  /** What the running watches have seen (a watch adds its own and removes it when it ends). */
  readonly sights = new Set<Sight>();

  constructor(
    readonly client: DoozerLockClient,
    readonly name: string,
    readonly address: string,
  ) {
    this.electionPath = electionPath(name);
    this.leasePath = leasePath(name);
    this.glob = electionGlob(name);
  }

  /** Waits for the client to be connected (any request waits for that) and returns the connection. */
  async connected(call: Call): Promise<number> {
    if (this.client.state !== 'connected') await this.client.rev(call.on());
    return this.client.connectionId;
  }

  /**
   * Takes in a fresh read of both files at store rev `rev` from node `node`.
   * Returns whether the store lost its state since the last thing seen (its
   * rev went back): then every older version is void.
   */
  tookRead(rev: number, node: string, files: ElectionFiles): boolean {
    const stateLost = rev < this.storeRev;
    if (stateLost) {
      this.epoch++;
      this.era++;
      this.electionRev = 0;
      this.created.clear();
      this.storeRev = rev;
    } else if (this.node !== '' && node !== this.node && files.lease.rev === 0) {
      // A missing lease looks the same in every store: on another node (or a
      // restarted one that lost its state and came back to our rev) it cannot
      // show that this is the store we saw it missing in. Wait it out anew.
      this.era++;
    }
    this.node = node;
    this.saw(rev);
    return stateLost;
  }

  /** Notes a store rev seen in an event or a write answer. */
  saw(rev: number): void {
    if (rev > this.storeRev) this.storeRev = rev;
  }

  /** Notes that this lock created the election file at `rev`. */
  createdElection(rev: number): void {
    this.created.add(rev);
    if (this.created.size > 16) this.created.delete(this.created.values().next().value as number);
  }

  /**
   * The most recent sight of the election file on connection `conn` in the
   * current epoch, from a running watch; `null` when no watch vouches for it.
   */
  sight(conn: number): Sight | null {
    let best: Sight | null = null;
    for (const x of this.sights) {
      const live = x.conn === conn && x.epoch === this.epoch && !x.stop.aborted;
      if (live && (best === null || x.at > best.at)) best = x;
    }
    return best;
  }

  /** A version of `files`, known up to store rev `rev` on connection `conn`. */
  version(files: ElectionFiles, conn: number, rev: number): DoozerVersion {
    this.saw(rev);
    return {
      key: versionKey(files, this.epoch),
      session: this,
      conn,
      rev,
      files,
      epoch: this.epoch,
    };
  }

  /** The record and liveness of a version (the highest election rev of the era counts). */
  describe(v: DoozerVersion): { record: LockRecord | null; liveness: string } {
    const e = v.files.election;
    if (v.epoch === this.epoch && e && e.rev > this.electionRev) this.electionRev = e.rev;
    const record = recordOf(v.files, v.epoch, {
      id: this.id,
      createdElectionRev: (rev) => this.created.has(rev) && e?.master === this.address,
    });
    return { record, liveness: livenessOf(v.files, this.era, this.electionRev) };
  }
}

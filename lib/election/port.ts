/**
 * The election engine's storage port: the few operations any store offers
 * for one election, in the engine's words.
 *
 * A backend (Doozer, etcd, PostgreSQL, the in-memory store of
 * `nestjs-master-election/testing`) implements two things:
 *
 * - an {@link ElectionStore}: one connection to a store, shared by every
 *   election of a process; it opens locks;
 * - an {@link ElectionLock}: one election as seen by one participant. It
 *   reads and follows the election's record and writes it by
 *   compare-and-set. It knows the store's layout and revision rules; the
 *   engine knows none of them: it sees records, opaque versions, and a few
 *   capabilities.
 *
 * What the engine decides (who may run, when a silent master is replaced,
 * when a master steps down) depends only on what a lock reports and on the
 * engine's own monotonic clock. What a lock guarantees is what makes that
 * safe; each backend's page under `docs/backends/` argues it for its store.
 *
 * Rules every lock follows:
 * - Every write is a compare-and-set: it succeeds only on the version the
 *   writer names, and reports a conflict (not an error) otherwise.
 * - A lock never decides on time: it does not wait out leases, retry with
 *   delays or judge a holder dead. (A store may expire holders itself; see
 *   {@link LockCapabilities.expiry}.)
 * - Errors are thrown as the store's own typed errors; the engine asks
 *   {@link ElectionLock.classify} whether to retry.
 * - Bad input (a name the store cannot hold, a version or term from another
 *   lock) is rejected with a typed error before anything is written.
 * - Secrets (passwords, access keys) never appear in errors, logs or
 *   `toString()`.
 */
import type { Clock } from './clock.js';
import type { ElectionLogger } from './types.js';

/**
 * One version of an election's record in a store. Opaque to the engine: it
 * only hands versions back to the lock that issued them, and compares their
 * keys. Locks attach what they need (revisions, connection ids) in their own
 * subtypes.
 */
export interface LockVersion {
  /**
   * Equal keys mean the same version of the record in the same store. Two
   * versions with different contents always have different keys, also when
   * a store that lost its state has reused its revision numbers.
   */
  readonly key: string;
}

/**
 * What a record says of the election.
 *
 * - `held`: a master holds the election and proves it is alive (it renews).
 * - `ended`: the term was ended by someone other than its holder (deposed,
 *   or a forced election) and not given back: nobody is master, but the
 *   holder may still be acting until its renew deadline, so the way is free
 *   only once the holder can no longer act (see {@link LockSnapshot.liveness}).
 * - `released`: the last master gave the election back; the way is free at once.
 * - `unleased`: a master that never proves it is alive (a participant of the
 *   Go package on Doozer, or one that died halfway through taking a term).
 *   The engine replaces it after `leaseMs` unless told to respect such
 *   masters (`respectLeaselessMaster`).
 */
export type LockRecordState = 'held' | 'ended' | 'released' | 'unleased';

/** Who holds (or last held) the election, and which term. */
export interface LockRecord {
  readonly state: LockRecordState;
  /** The holder's advertised `host:port` (for `released`/`ended`: the last holder's); `''` when unknown. */
  readonly holder: string;
  /** The {@link ElectionLock.id} of the lock that holds the term; `''` for a holder that is not one of ours (`unleased`). */
  readonly holderId: string;
  /**
   * The term's fencing token, assigned by the store. Within one store, every
   * new term has a larger token than every earlier term (the store's
   * revision, sequence or create revision).
   */
  readonly token: number;
  /**
   * Identifies the term: the same across its renewals, different for every
   * term, also across a store that lost its state and reused its revision
   * numbers. Compare with {@link LockTerm.termId}.
   */
  readonly termId: string;
}

/** An election's record at one version: `record` is `null` when the store holds none. */
export interface LockSnapshot {
  readonly version: LockVersion;
  readonly record: LockRecord | null;
  /**
   * What the engine times a silent master by (with `expiry: 'observer'`):
   * it changes whenever the holder proves it is alive (each renewal), when a
   * term begins, and whenever the store can no longer vouch for what was
   * there before (for example a missing record read from another server
   * node). The engine replaces a master, or takes an `ended` or missing
   * record, only after it has seen no change of this value for `leaseMs` on
   * its own clock. It does not change when a term is merely ended, so an
   * `ended` record is waited out from the holder's last renewal.
   */
  readonly liveness: string;
}

/** What {@link ElectionLock.read} returns. */
export interface LockRead extends LockSnapshot {
  /**
   * The store lost or replaced its state since this lock's previous read or
   * event (for example a Doozer server that restarted empty: its revision
   * went back). Every term this participant holds ends at once, and every
   * version it kept is meaningless.
   */
  readonly stateLost: boolean;
}

/**
 * One event of {@link ElectionLock.watch}.
 *
 * - `change`: the record is now at `snapshot` (changes come in store order;
 *   a lock may coalesce several into the last one).
 * - `reset`: the lock can no longer say what changed (fell behind the
 *   store's history, lost its stream or connection, moved to another
 *   server node, compaction). The stream ends after it; the engine reads
 *   again and follows from there.
 */
export type LockEvent =
  | { readonly kind: 'change'; readonly snapshot: LockSnapshot }
  | { readonly kind: 'reset'; readonly reason: string };

/**
 * A term this participant won, as the lock needs it to renew and release
 * it. Locks return their own subtype (with revisions, nonces, lease ids);
 * the engine keeps the latest one it was given and passes it back.
 */
export interface LockTerm {
  /** The term's fencing token (as in {@link LockRecord.token}). */
  readonly token: number;
  /** The term's identity (as in {@link LockRecord.termId}). */
  readonly termId: string;
  /** The version this participant's last successful write produced. */
  readonly version: LockVersion;
}

/** Outcome of {@link ElectionLock.create}. */
export type CreateResult =
  | { readonly kind: 'won'; readonly term: LockTerm }
  /** Another participant was first, or the record moved on from the basis; it shows up in `watch()`. */
  | { readonly kind: 'lost' };

/** Outcome of {@link ElectionLock.renew}. */
export type RenewResult =
  /**
   * A write of attempt `attempt` of this term is the record now: the term is
   * extended from that attempt's start. Usually the attempt just made; after
   * a conflict, the lock may find an earlier attempt's write that landed
   * late.
   */
  | { readonly kind: 'renewed'; readonly term: LockTerm; readonly attempt: number }
  /** A read confirmed that the term still holds the record, but no write of a known attempt landed: nothing is extended (renew again soon). */
  | { readonly kind: 'held'; readonly term: LockTerm }
  /** The record is no longer this term's: step down. */
  | { readonly kind: 'lost'; readonly holder: string };

/** Bounds of one lock operation. */
export interface LockCallOptions {
  /** The operation gives up (throws a transient error) after this long. */
  readonly timeoutMs: number;
  /** Aborts the operation (it throws a transient error). */
  readonly signal?: AbortSignal;
}

/** What the engine must know of a store's nature. */
export interface LockCapabilities {
  /**
   * Who decides that a silent holder is gone.
   * - `observer`: every participant, on its own monotonic clock, after
   *   `leaseMs` without seeing {@link LockSnapshot.liveness} change; then it
   *   deposes the holder. Renewals must change `liveness` (Doozer, memory).
   * - `store`: the store ends a silent holder's term itself (an etcd lease
   *   expiring, a database's clock) and `watch()` reports it. The engine
   *   never deposes a holder for silence and never waits out `liveness`.
   */
  readonly expiry: 'observer' | 'store';
  /**
   * Whether a missing record proves that no master is at work. False on
   * Doozer, where a server that lost its state looks empty while a master
   * may still act: a missing record is then waited out like a silent
   * holder, so the first election on an empty store takes `leaseMs`. True
   * where the store keeps its state durably or expires holders itself.
   */
  readonly absentProvesNoMaster: boolean;
}

/** Whether the connection under a lock is usable (for `health()`). */
export interface LockStatus {
  readonly connected: boolean;
  /** Why not, or where to; never holds a secret. */
  readonly detail?: string;
}

/** How the engine classifies an error thrown by a lock. */
export type LockErrorKind =
  /** Retry later (a lost connection, a timeout, a store that is busy or electing). */
  | 'transient'
  /** The election cannot go on (access refused, the schema is missing and may not be created). */
  | 'fatal';

/** One election, as one participant sees and writes it. */
export interface ElectionLock {
  /** The backend's name, for logs and metrics: `doozer`, `etcd`, `postgres`, `memory`. */
  readonly backend: string;
  /**
   * This participant's identity in the store, unique per lock instance
   * (random, or the store's own session id). Records of its terms carry it
   * as {@link LockRecord.holderId}.
   */
  readonly id: string;
  readonly capabilities: LockCapabilities;

  /** Reads the record now. */
  read(options: LockCallOptions): Promise<LockRead>;

  /**
   * Follows the record's changes after `from` (a version read or seen
   * before), until `signal` aborts (then it ends quietly), a `reset` (then
   * it ends after yielding it), or an error (thrown from the iterator:
   * {@link classify} says which kind).
   */
  watch(from: LockVersion, signal: AbortSignal): AsyncIterable<LockEvent>;

  /**
   * Starts a term of this participant, if the record is still at `basis`
   * (or has been released since). Exactly one of any number of concurrent
   * creators from the same basis wins. `won` carries the term; its token is
   * assigned by the store. The engine calls it only when its rules let this
   * participant run (the record is missing, released, ended and waited out,
   * or was just deposed); a lock does not check timing.
   */
  create(basis: LockVersion, options: LockCallOptions): Promise<CreateResult>;

  /**
   * Extends this participant's term: a compare-and-set on the term's last
   * version. `attempt` numbers the renewals of a term (from 1); the lock may
   * record it so that a late write can be recognised (see
   * {@link RenewResult}).
   */
  renew(term: LockTerm, attempt: number, options: LockCallOptions): Promise<RenewResult>;

  /**
   * Gives this participant's term back so another may start at once (for
   * `observer` stores: the record becomes `released`). Only if the record
   * is still this term's; otherwise nothing is written and it returns
   * `not-held`. Idempotent; safe to retry after an error.
   */
  release(term: LockTerm, options: LockCallOptions): Promise<'released' | 'not-held'>;

  /**
   * Ends the term recorded at `version`, someone else's (a master silent for
   * `leaseMs`, or a forced election): only if the record is still at that
   * version. Afterwards the record is `ended` (or, where the store knows the
   * holder is gone, free). `changed` when it moved on.
   */
  depose(version: LockVersion, options: LockCallOptions): Promise<'deposed' | 'changed'>;

  /** Whether an error thrown by this lock is worth retrying. */
  classify(err: unknown): LockErrorKind;

  /** The state of the connection under the lock. */
  status(): LockStatus;

  /**
   * Frees what the lock holds in the store for itself (streams, sessions,
   * leases of its own); it does not release a term (the engine does that
   * first) and does not close a connection it was given.
   */
  close(): Promise<void>;

  /** Where the lock is, for logs: backend, redacted address, election. Never a secret. */
  toString(): string;
}

/** Timing the engine runs an election with (validated: `leaseMs > renewDeadlineMs > retryPeriodMs > 0`). */
export interface LockTiming {
  readonly leaseMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

/** What the engine tells a store when it opens a lock. */
export interface LockRequest {
  /** The election's name; the store checks that it can hold it unambiguously (else `ElectionConfigError('name')`). */
  readonly name: string;
  /** The `host:port` this participant advertises as master. */
  readonly address: string;
  /** False for a passive participant: it never creates or renews a term. */
  readonly participating: boolean;
  /** A store that keeps leases itself checks they fit (else `ElectionConfigError` naming the option). */
  readonly timing: LockTiming;
  readonly clock: Clock;
  readonly logger: ElectionLogger;
}

/**
 * One connection to a store, shared by every election of a process that
 * uses it. `openLock` may be called many times; a store never closes a
 * client or pool it was given.
 */
export interface ElectionStore {
  /** The backend's name (as in {@link ElectionLock.backend}). */
  readonly backend: string;
  /** Opens one election for one participant; rejects bad names and timing before anything is written. */
  openLock(request: LockRequest): Promise<ElectionLock>;
  /** Where the store is, redacted. */
  toString(): string;
}

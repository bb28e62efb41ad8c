/**
 * The election's rules, as pure functions: what a participant should do
 * next, given what it has seen of the election (a {@link ElectionView}), its
 * {@link Phase} and the time on its own monotonic clock. Nothing here reads
 * a clock, writes to a store or keeps state; the runner (runner.ts) feeds
 * it and carries out what it returns. docs/election-protocol.md explains
 * each rule and why it is safe.
 */
import type { StepDownReason } from '../errors.js';
import type { LockCapabilities, LockRecord, LockSnapshot, LockVersion } from '../port.js';

/** What decide() needs of this participant's current term. */
export interface TermFacts {
  readonly token: number;
  readonly termId: string;
  /** Clock time at which the term is over unless a renewal extends it. */
  readonly validUntil: number;
  /**
   * Whether a snapshot showing this term has been observed. Until then, a
   * snapshot of another term may be one from before this term began (the
   * watch can lag behind the answer to our create), so it is not taken as a
   * sign that the term was lost; a renewal will tell.
   */
  readonly confirmed: boolean;
}

/**
 * What this participant is doing. One value, changed only by the runner.
 * - `following`: no term of its own and no election write in flight (it
 *   may be waiting for a master to fall silent, or out a jitter delay);
 * - `campaigning`: a create (a run for master) is in flight;
 * - `deposing`: a depose of a silent master is in flight;
 * - `master`: it holds a term (announced to the receiver or not yet);
 * - `closing`: `close()` has begun: no new election action, writes in
 *   flight may land (and whatever they win is given back);
 * - `stopped`: closed or failed; nothing happens any more.
 */
export type Phase<T extends TermFacts = TermFacts> =
  | { readonly kind: 'following' }
  | { readonly kind: 'campaigning' }
  | { readonly kind: 'deposing' }
  | { readonly kind: 'master'; readonly term: T }
  | { readonly kind: 'closing' }
  | { readonly kind: 'stopped' };

/** What this participant knows of the election. */
export interface ElectionView {
  /** The {@link ElectionLock.id} of this participant's lock. */
  readonly lockId: string;
  readonly capabilities: LockCapabilities;
  readonly participating: boolean;
  /** False while it cannot say what the store holds (before the first read, after a reset until the next read). */
  readonly synced: boolean;
  /** The latest snapshot, from a read or the watch (`null` before the first read or after the store lost its state). */
  readonly snapshot: LockSnapshot | null;
  /** Clock time at which it last saw the snapshot's `liveness` change. */
  readonly livenessSeenAt: number;
  /** No create or depose before this time (after a lost race or a failed write). */
  readonly backoffUntil: number;
  /** After a resignation: sit the next election out until `until`, or until a term newer than `afterToken` begins. */
  readonly abstain: { readonly until: number; readonly afterToken: number } | null;
  /** Ended terms of ours whose release waits for `beforeRelease`: their record is not free, even to us. */
  readonly holding: ReadonlySet<string>;
  /** The version we just deposed: nothing to decide until the watch shows what came of it. */
  readonly deposedKey: string | null;
  /**
   * A version that a create or depose of ours found out of date: the record
   * moved on but the watch has not shown it yet (or lost the change). It is
   * not written against again; it is read first.
   */
  readonly staleKey: string | null;
}

/** The options decide() depends on. */
export interface DecideOptions {
  readonly leaseMs: number;
  readonly respectLeaselessMaster: boolean;
}

/** What the runner should do now. */
export type Decision =
  | { readonly kind: 'none' }
  /** Nothing yet; decide again at `until` (unless something changes first). */
  | { readonly kind: 'wait'; readonly until: number }
  /** Run for master from `basis` (after the jitter delay). */
  | { readonly kind: 'create'; readonly basis: LockVersion }
  /** Read the record again: the view is known to be out of date. */
  | { readonly kind: 'read' }
  /** End the silent master's term recorded at `version` (after the jitter delay). */
  | {
      readonly kind: 'depose';
      readonly version: LockVersion;
      readonly holder: string;
      readonly token: number;
    }
  /** This participant's term is over. */
  | { readonly kind: 'step-down'; readonly reason: StepDownReason; readonly message: string };

const NONE: Decision = { kind: 'none' };
const wait = (until: number): Decision => ({ kind: 'wait', until });

/** Whether a record names a master at work (one that renews, or one that never does). */
export const namesMaster = (r: LockRecord | null): r is LockRecord =>
  r !== null && (r.state === 'held' || r.state === 'unleased');

/** Whether `abstain` still applies at `now`. */
export const abstaining = (view: Pick<ElectionView, 'abstain'>, now: number): boolean =>
  view.abstain !== null && now < view.abstain.until;

/**
 * Whether the way is free for a new term without waiting: the record was
 * released by its holder; or it is missing and the store says a missing
 * record proves that nobody is at work; or it is a term of ours that has
 * ended (we know we do not act on it) and whose release is not held back.
 */
export function isFree(view: ElectionView): boolean {
  const r = view.snapshot?.record ?? null;
  if (r === null) return view.capabilities.absentProvesNoMaster;
  if (r.state === 'released') return true;
  return r.state === 'ended' && r.holderId === view.lockId && !view.holding.has(r.termId);
}

/** Decides what this participant does next. Pure: same input, same answer. */
export function decide(view: ElectionView, phase: Phase, now: number, o: DecideOptions): Decision {
  if (phase.kind === 'master') return judgeTerm(view, phase.term, now);
  if (phase.kind !== 'following') return NONE;
  if (!view.participating || !view.synced || view.snapshot === null) return NONE;
  if (now < view.backoffUntil) return wait(view.backoffUntil);
  const { record, version } = view.snapshot;
  if (view.deposedKey !== null && version.key === view.deposedKey) return NONE;
  const act = (d: Decision): Decision => (version.key === view.staleKey ? { kind: 'read' } : d);
  const observer = view.capabilities.expiry === 'observer';
  // Silence is timed from the last change of liveness this participant saw, on its own clock.
  const expiry = view.livenessSeenAt + o.leaseMs;
  if (namesMaster(record)) {
    if (record.state === 'unleased' && o.respectLeaselessMaster) return NONE;
    if (!observer) return NONE; // the store ends a silent holder's term itself
    if (now < expiry) return wait(expiry);
    return act({ kind: 'depose', version, holder: record.holder, token: record.token });
  }
  if (abstaining(view, now)) return wait(view.abstain!.until);
  if (isFree(view)) return act({ kind: 'create', basis: version });
  // An ended term (its holder may act until its deadline) or a missing record
  // the store cannot vouch for: wait it out like a silent holder. With store
  // expiry, an ended term is the store's to end.
  if (record !== null && !observer) return NONE;
  return now < expiry ? wait(expiry) : act({ kind: 'create', basis: version });
}

/**
 * Whether this participant's term goes on, given what it sees: it ends at
 * its renew deadline, and as soon as the record shows it ended, released or
 * replaced.
 */
export function judgeTerm(view: ElectionView, term: TermFacts, now: number): Decision {
  if (now >= term.validUntil) {
    return stepDown('renew-deadline', 'no renewal completed within renewDeadlineMs');
  }
  const r = view.snapshot?.record ?? null;
  if (r !== null && r.termId === term.termId) {
    if (r.state === 'held') return NONE;
    if (r.state === 'ended') {
      return stepDown(
        'election-changed',
        'the term was ended by another participant (a forced election)',
      );
    }
    return stepDown('lease-lost', `the lease was changed by ${r.holder || 'another client'}`);
  }
  // Not our term: unless we saw ours, this may be a record from before it began.
  if (!term.confirmed) return NONE;
  if (r === null) return stepDown('election-changed', 'the election record was deleted');
  if (r.token === term.token) {
    return stepDown('lease-lost', `the lease was changed by ${r.holder || 'another client'}`);
  }
  return stepDown(
    'election-changed',
    namesMaster(r) ? `the election now names ${r.holder}` : 'the election record was replaced',
  );
}

const stepDown = (reason: StepDownReason, message: string): Decision => ({
  kind: 'step-down',
  reason,
  message,
});

/**
 * The upper bound of the random delay before a create or depose: the
 * `electionJitterMs` option when set; otherwise four times the measured write
 * round trip (at least 20 ms), scaled by the contention factor (doubled for
 * each lost race, halved for each win), at most `retryPeriodMs / 2`.
 */
export function jitterWindow(
  o: { readonly electionJitterMs: number | undefined; readonly retryPeriodMs: number },
  writeRttMs: number,
  contention: number,
): number {
  if (o.electionJitterMs !== undefined) return o.electionJitterMs;
  return Math.min(Math.max(4 * writeRttMs, 20) * contention, o.retryPeriodMs / 2);
}

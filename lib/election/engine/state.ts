/**
 * What the getters report, as pure functions of the runner's phase and view
 * at a given time: a term past its deadline counts as over at once, before
 * the runner gets to step it down.
 */
import type { LockStatus } from '../port.js';
import type { ElectionRole, ElectionState } from '../types.js';
import { namesMaster, type ElectionView, type Phase } from './decide.js';
import type { ActiveTerm } from './term.js';

/** Health of an election client (see `health()`). */
export interface ElectionHealth {
  /** False when stopped, disconnected, resyncing, or a master past its renew deadline that has not stepped down. */
  readonly healthy: boolean;
  readonly role: ElectionRole;
  readonly master: string;
  readonly term: number;
  /** Whether the connection to the store is up. */
  readonly connected: boolean;
  /** Why it is unhealthy. */
  readonly reason?: string;
}

/** The term of `phase` if it is still in force at the clock's time. */
export function termInForce(phase: Phase<ActiveTerm>): ActiveTerm | undefined {
  return phase.kind === 'master' && phase.term.inForce() ? phase.term : undefined;
}

/** The election's state as this participant sees it now (a term past its deadline is over). */
export function electionState(
  phase: Phase<ActiveTerm>,
  view: ElectionView,
  address: string,
): ElectionState {
  if (phase.kind === 'stopped') return { role: 'stopped', master: '', term: 0 };
  const term = termInForce(phase);
  if (term?.announced) return { role: 'master', master: address, term: term.token };
  if (term) return { role: 'candidate', master: '', term: 0 };
  const r = view.snapshot?.record ?? null;
  if (namesMaster(r)) return { role: 'slave', master: r.holder, term: r.token };
  // A participant with no master known is a candidate, also while it sits an election out.
  if (view.participating) return { role: 'candidate', master: '', term: 0 };
  return { role: 'slave', master: '', term: 0 };
}

/** The current master's address (`''` when none): ours only once announced. */
export function currentMaster(
  phase: Phase<ActiveTerm>,
  view: ElectionView,
  address: string,
): string {
  const term = termInForce(phase);
  if (term) return term.announced ? address : '';
  const r = view.snapshot?.record ?? null;
  return namesMaster(r) ? r.holder : '';
}

/** The current master term's fencing token (ours once announced, or the one followed), 0 when none. */
export function currentToken(phase: Phase<ActiveTerm>, view: ElectionView): number {
  const term = termInForce(phase);
  if (term) return term.announced ? term.token : 0;
  const r = view.snapshot?.record ?? null;
  return namesMaster(r) ? r.token : 0;
}

/** Why the election is unhealthy, or `undefined` when it is healthy. */
export function unhealthyReason(
  phase: Phase<ActiveTerm>,
  view: ElectionView,
  status: LockStatus,
  backend: string,
  retryPeriodMs: number,
  now: number,
): string | undefined {
  if (phase.kind === 'stopped') return 'election stopped';
  if (phase.kind === 'master') {
    const t = phase.term;
    if (now >= t.validUntil) return 'master past its renew deadline has not stepped down (stuck)';
    if (!t.announced && now - t.wonAt >= retryPeriodMs) {
      return 'won the election but becomeMaster waits behind a notification handler (stuck)';
    }
  }
  if (!status.connected) {
    return status.detail ?? `${backend} connection is down`;
  }
  if (!view.synced) return 'resynchronising with the store';
  return undefined;
}

/** What the demo prints about the lease it found, and its summary: the same figures on every backend. */
import type { LockCapabilities } from 'nestjs-master-election';
import { BACKEND_TITLE, type DemoBackend, type FailoverRule } from './backend.js';
import { bold, dim, ms, say } from './console.js';
import type { LeaseOnStart } from './observer.js';
import type { DemoTimings } from './timings.js';

/** The demo's measurements. */
export interface Results {
  readonly backend: DemoBackend;
  readonly timings: DemoTimings;
  readonly lease: LeaseOnStart;
  /** Whether the first master had to wait out one lease. */
  readonly firstWaitsLease: boolean;
  readonly failover: FailoverRule;
  /** Spawn of the replicas -> the first one ready. */
  readonly bootMs: number;
  /** Spawn of the replicas -> the first master. */
  readonly firstElectionMs: number;
  /** SIGKILL of the master -> the next master. */
  readonly failoverMs: number;
  /** SIGTERM of the master -> the next master. */
  readonly handoverMs: number;
  /** Leader-only job runs, per replica. */
  readonly jobRuns: readonly { readonly label: string; readonly runs: number }[];
}

/** Whether the first master waits out one lease: only where a missing record proves nothing (Doozer). */
export function firstWaitsLease(lease: LeaseOnStart, capabilities: LockCapabilities): boolean {
  return lease.kind === 'held' || (lease.kind === 'missing' && !capabilities.absentProvesNoMaster);
}

/** What the store held before the replicas started, and what that means for the first election. */
export function describeLease(
  lease: LeaseOnStart,
  leaseMs: number,
  capabilities: LockCapabilities,
  backend: DemoBackend,
): string[] {
  switch (lease.kind) {
    case 'missing':
      return capabilities.absentProvesNoMaster
        ? [
            `A new election (nothing stored yet): on ${BACKEND_TITLE[backend]} that proves no master is at work,`,
            `so the first master is elected at once.`,
          ]
        : [
            `A new election (no lease yet): the first master is elected after one lease (${leaseMs} ms),`,
            `as a missing lease cannot prove that no master is still at work.`,
          ];
    case 'released':
      return ['The lease was released by its last holder: the first master is elected at once.'];
    case 'held':
      return [
        `The lease is held by ${lease.holder} (an earlier run?): it is taken over once`,
        `it has not been renewed for one lease (${leaseMs} ms).`,
      ];
  }
}

/** Prints the summary. */
export function summary(r: Results): void {
  const { leaseMs } = r.timings;
  const first =
    r.lease.kind === 'released'
      ? 'the lease was free: no wait'
      : r.firstWaitsLease
        ? `boot ~${Math.round(r.bootMs)} ms, then one lease (${leaseMs} ms)`
        : `boot ~${Math.round(r.bootMs)} ms, no lease to wait out`;
  say();
  say(bold(`Summary (${BACKEND_TITLE[r.backend]})`));
  say(`  first election  ${ms(r.firstElectionMs, 6)}   spawn -> first master: ${first}`);
  say(
    `  failover        ${ms(r.failoverMs, 6)}   kill -9 -> new master; bound: ${r.failover.bound}`,
  );
  say(
    `  handover        ${ms(r.handoverMs, 6)}   SIGTERM -> new master; the master resigned, no lease to wait out`,
  );
  say(
    `  leader-only job   runs: ${r.jobRuns.map((j) => `${j.label} ${j.runs}`).join(', ')}; each one on the master of its term`,
  );
  say(dim(`  (${r.failover.note})`));
}

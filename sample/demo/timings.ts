import type { MasterElectionOptions } from 'nestjs-master-election';

/** The three election timings the demo sets. */
export type DemoTimings = Required<
  Pick<MasterElectionOptions, 'leaseMs' | 'renewDeadlineMs' | 'retryPeriodMs'>
>;

/**
 * The demo's election timings: a fifth of the library's defaults
 * (10000/7000/2000 ms), so that a failover takes seconds, not ten, with the
 * same proportions (several renewals fit in a renew deadline). `--short`
 * halves them again, for CI.
 */
export const DEMO_TIMINGS: Readonly<Record<'normal' | 'short', DemoTimings>> = {
  normal: { leaseMs: 2000, renewDeadlineMs: 1400, retryPeriodMs: 400 },
  short: { leaseMs: 1000, renewDeadlineMs: 700, retryPeriodMs: 200 },
};

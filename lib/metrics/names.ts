/**
 * The metrics' names, units and attribute keys, in OpenTelemetry's
 * semantic-convention style: dot-separated lowercase names under one
 * namespace, durations in seconds (`s`), counts in curly-brace units, no
 * unit or `_total` in the name (a Prometheus exporter adds those). Each is
 * described in docs/metrics.md.
 */

/** The instrumentation scope (the meter's name). */
export const METER_NAME = 'nestjs-master-election';

/** Metric names. */
export const METRIC = {
  /** Gauge: 1 while this process is master of the election, else 0. */
  isMaster: 'master_election.is_master',
  /** Gauge: the fencing token of the current master term (ours or another's), 0 while none is known. */
  fencingToken: 'master_election.fencing_token',
  /** Counter: master terms seen to begin (this process's and others'). */
  termsStarted: 'master_election.terms.started',
  /** Counter: this process's master terms that ended, by reason. */
  termsEnded: 'master_election.terms.ended',
  /** Histogram: time with no master seen, from the moment a master was seen gone to the next master seen. */
  noMasterDuration: 'master_election.no_master.duration',
  /** Histogram: time one renewal of the lease takes (a lock's `renew()`). */
  renewalDuration: 'master_election.renewal.duration',
  /** Counter: errors thrown by a lock's operations, by kind. */
  lockErrors: 'master_election.lock.errors',
  /** Counter: errors the election reported to its receiver (`electionError`, `electionFatal`). */
  errors: 'master_election.errors',
} as const;

/** Attribute keys. */
export const ATTR = {
  /** The election's name. */
  name: 'election.name',
  /** The backend: `doozer`, `etcd`, `postgres`, `memory`. */
  backend: 'election.backend',
  /** Who holds a term that began: `self` or `other`. */
  holder: 'election.term.holder',
  /** Why a term of this process ended: a `StepDownReason` of the engine (`resigned`, `forced`, `lease-lost`, ...). */
  endReason: 'election.term.end_reason',
  /** The lock operation that failed or was timed: `read`, `watch`, `create`, `renew`, `release`, `depose`. */
  operation: 'election.lock.operation',
  /** The outcome of a renewal: `renewed`, `held`, `lost` or `error`. */
  outcome: 'election.renewal.outcome',
  /** An error's kind: for lock errors the lock's classification (`transient`, `fatal`), for reported errors `error` or `fatal`. */
  errorKind: 'election.error.kind',
  /** The error's class name (OpenTelemetry's `error.type`). */
  errorType: 'error.type',
} as const;

/** Bucket boundaries (seconds) of the duration histograms: 1 ms to 60 s, where handovers, failovers and renewals fall. */
export const DURATION_BUCKETS_S = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

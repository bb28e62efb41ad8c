import { durationProblem } from '../shared/duration.js';
import { guardLogger } from '../shared/logger.js';
import { isValidPathComponent } from '../wire/path.js';
import { systemClock, type Clock } from './clock.js';
import { ElectionConfigError } from './errors.js';
import type { ElectionLogger, MasterElectionOptions } from './types.js';

/** Default `leaseMs`: others replace a silent master after 10 s. */
export const DEFAULT_LEASE_MS = 10_000;
/** Default `renewDeadlineMs`: a master that cannot renew for 7 s steps down. */
export const DEFAULT_RENEW_DEADLINE_MS = 7_000;
/** Default `retryPeriodMs`: the master renews every 2 s. */
export const DEFAULT_RETRY_PERIOD_MS = 2_000;

/** Options with every default applied. */
export interface ResolvedElectionOptions {
  readonly leaseMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly electionJitterMs: number | undefined;
  readonly respectLeaselessMaster: boolean;
  readonly becomeMasterTimeoutMs: number;
  readonly beforeRelease: MasterElectionOptions['beforeRelease'];
  readonly logger: ElectionLogger;
  readonly clock: Clock;
}

const quietLogger: ElectionLogger = {
  log: () => {},
  warn: () => {},
  error: (m) => console.error(m),
};

function duration(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const problem = durationProblem(value);
  if (problem !== undefined) throw new ElectionConfigError(option, problem);
  return value as number;
}

/** A default derived from another option; too small a source is reported against that option. */
function derived(value: number, from: string, fromValue: number, what: string): number {
  if (value < 1) {
    throw new ElectionConfigError(
      from,
      `is too small (${fromValue} ms): the ${what} derived from it would be under 1 ms; use a larger value or set ${what} explicitly`,
    );
  }
  return value;
}

/** Applies defaults and checks `leaseMs > renewDeadlineMs > retryPeriodMs > 0`. */
export function resolveElectionOptions(
  options: MasterElectionOptions = {},
): ResolvedElectionOptions {
  const leaseMs = duration('leaseMs', options.leaseMs, DEFAULT_LEASE_MS);
  const renewDeadlineMs =
    options.renewDeadlineMs === undefined
      ? derived(
          Math.min(DEFAULT_RENEW_DEADLINE_MS, Math.floor(leaseMs * 0.7)),
          'leaseMs',
          leaseMs,
          'renewDeadlineMs',
        )
      : duration('renewDeadlineMs', options.renewDeadlineMs, 0);
  const retryPeriodMs =
    options.retryPeriodMs === undefined
      ? derived(
          Math.min(DEFAULT_RETRY_PERIOD_MS, Math.floor(renewDeadlineMs / 3.5)),
          options.renewDeadlineMs === undefined ? 'leaseMs' : 'renewDeadlineMs',
          options.renewDeadlineMs === undefined ? leaseMs : renewDeadlineMs,
          'retryPeriodMs',
        )
      : duration('retryPeriodMs', options.retryPeriodMs, 0);
  if (!(leaseMs > renewDeadlineMs)) {
    throw new ElectionConfigError(
      'renewDeadlineMs',
      `must be less than leaseMs (${renewDeadlineMs} >= ${leaseMs}): a master must step down before others may replace it`,
    );
  }
  if (!(renewDeadlineMs > retryPeriodMs)) {
    throw new ElectionConfigError(
      'retryPeriodMs',
      `must be less than renewDeadlineMs (${retryPeriodMs} >= ${renewDeadlineMs}): a master needs room to retry a renewal before its deadline`,
    );
  }
  const electionJitterMs =
    options.electionJitterMs === undefined
      ? undefined
      : options.electionJitterMs === 0
        ? 0
        : duration('electionJitterMs', options.electionJitterMs, 0);
  if (electionJitterMs !== undefined && electionJitterMs >= retryPeriodMs) {
    throw new ElectionConfigError(
      'electionJitterMs',
      `must be less than retryPeriodMs (${electionJitterMs} >= ${retryPeriodMs})`,
    );
  }
  // As the Nest layer's option of the same name: by default the renew deadline.
  const becomeMasterTimeoutMs = duration(
    'becomeMasterTimeoutMs',
    options.becomeMasterTimeoutMs,
    renewDeadlineMs,
  );
  return {
    leaseMs,
    renewDeadlineMs,
    retryPeriodMs,
    electionJitterMs,
    respectLeaselessMaster: options.respectLeaselessMaster ?? false,
    becomeMasterTimeoutMs,
    beforeRelease: options.beforeRelease,
    logger: options.logger ? guardLogger(options.logger) : quietLogger,
    clock: options.clock ?? systemClock,
  };
}

/** Checks an election name: one Doozer path component. */
export function validateElectionName(name: unknown): string {
  if (typeof name !== 'string' || !isValidPathComponent(name)) {
    throw new ElectionConfigError(
      'name',
      `invalid election name ${JSON.stringify(name)}: it becomes the last component of /ns/service/master/<name>, so it must be non-empty and hold only letters, digits, "." and "-"`,
    );
  }
  return name;
}

const HOST_PORT = /^(?:\[([0-9a-fA-F:.%a-zA-Z]+)\]|([^\s:/[\]@]+)):(\d{1,10})$/;

/**
 * Checks an advertised address: `host:port`, `[ipv6]:port`. The address is
 * an identity written to the election file; like the Go tool's default
 * (`[::1]:<pid>`) it need not be a listening socket, so any decimal port up to
 * 2^31 is accepted.
 */
export function validateAddress(address: unknown): string {
  const m = typeof address === 'string' ? HOST_PORT.exec(address) : null;
  if (!m || Number(m[3]) > 2 ** 31) {
    throw new ElectionConfigError(
      'address',
      `invalid address ${JSON.stringify(address)}: expected "host:port" or "[ipv6]:port"`,
    );
  }
  return address as string;
}

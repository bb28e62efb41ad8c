/** Counts the errors an election reports to its receiver. */
import type { MasterElectionEventReceiver } from '../election/index.js';
import { resolveMeter } from './api.js';
import { ATTR, METRIC } from './names.js';
import type { MetricsOptions } from './options.js';

/** Options of {@link instrumentReceiver}. */
export interface ReceiverMetricsOptions extends MetricsOptions {
  /** The election's name (the receiver is made before its client): the `election.name` attribute. */
  readonly name: string;
}

const errorType = (err: unknown): string =>
  err instanceof Error && err.name !== '' ? err.name : typeof err;

/**
 * Wraps `receiver` so that every `electionError` and `electionFatal` the
 * election reports is counted in `master_election.errors` (by
 * `election.error.kind`: `error` or `fatal`, and `error.type`, the class
 * name) before the receiver's own handler runs. Pass the result to
 * `MasterElectionClient.create`.
 *
 * With no `meterProvider` and `@opentelemetry/api` absent, resolves with
 * `receiver` itself.
 */
export async function instrumentReceiver(
  receiver: MasterElectionEventReceiver,
  options: ReceiverMetricsOptions,
): Promise<MasterElectionEventReceiver> {
  const meter = await resolveMeter(options);
  if (!meter) return receiver;
  const errors = meter.createCounter(METRIC.errors, {
    description: 'Errors the election reported (electionError, electionFatal), by kind and type.',
    unit: '{error}',
  });
  const count = (kind: 'error' | 'fatal', err: unknown): void =>
    errors.add(1, {
      [ATTR.name]: options.name,
      [ATTR.backend]: options.backend ?? 'doozer',
      [ATTR.errorKind]: kind,
      [ATTR.errorType]: errorType(err),
    });
  return {
    becomeMaster: (term) => receiver.becomeMaster(term),
    becomeSlave: (master, token) => receiver.becomeSlave(master, token),
    electionError: (err) => {
      count('error', err);
      return receiver.electionError?.(err);
    },
    electionFatal: (err) => {
      count('fatal', err);
      return receiver.electionFatal?.(err);
    },
  };
}

/**
 * OpenTelemetry metrics of elections (docs/metrics.md), through the
 * optional peer `@opentelemetry/api`: a no-op when it is absent.
 */
export {
  instrumentElection,
  type ElectionMetricsOptions,
  type ObservedElection,
} from './election.js';
export { instrumentReceiver, type ReceiverMetricsOptions } from './receiver.js';
export { instrumentStore, type StoreMetricsOptions } from './store.js';
export { ATTR as METRIC_ATTRIBUTES, METER_NAME, METRIC as METRIC_NAMES } from './names.js';
export type {
  DetachMetrics,
  MeterProviderLike,
  MetricsOptions,
  OpenTelemetryImporter,
} from './options.js';

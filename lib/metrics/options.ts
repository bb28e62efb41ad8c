/**
 * Options of the metrics. No type here names `@opentelemetry/api`: the
 * package's types must compile for users who do not install that optional peer.
 */

/**
 * An OpenTelemetry `MeterProvider` (from `@opentelemetry/api`, such as the
 * SDK's `MeterProvider`), seen structurally.
 */
export interface MeterProviderLike {
  getMeter(name: string, version?: string): unknown;
}

/** Imports `@opentelemetry/api` (override it in tests or bundles). */
export type OpenTelemetryImporter = () => Promise<unknown>;

/** Options shared by every instrumentation call. */
export interface MetricsOptions {
  /**
   * Where the metrics go: an `@opentelemetry/api` `MeterProvider`, such as
   * the SDK's. Default: the global one (`metrics.getMeterProvider()`), which
   * records nothing until an SDK is registered; without `@opentelemetry/api`
   * installed, nothing is attached at all.
   */
  readonly meterProvider?: MeterProviderLike;
  /**
   * The backend's name, an attribute of every metric: `doozer` (default),
   * `etcd`, `postgres`, `memory`.
   */
  readonly backend?: string;
  /** Loads `@opentelemetry/api` when no `meterProvider` is given. For tests and bundlers; default `import('@opentelemetry/api')`. */
  readonly importer?: OpenTelemetryImporter;
}

/** Stops recording: removes every listener and callback the instrumentation added. Idempotent. */
export type DetachMetrics = () => void;

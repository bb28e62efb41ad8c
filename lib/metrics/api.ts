/**
 * Loads `@opentelemetry/api`, an optional peer. Absent (or failing to load),
 * the metrics are a no-op: nothing is attached, nothing is measured.
 * Internal: the public types (options.ts) do not name the package.
 */
import type { Meter } from '@opentelemetry/api';
import { METER_NAME } from './names.js';
import type { MetricsOptions, OpenTelemetryImporter } from './options.js';

/** The part of `@opentelemetry/api` the metrics use. */
interface OpenTelemetryApi {
  readonly metrics: { getMeterProvider(): { getMeter(name: string): Meter } };
}

// A dynamic import inside a function: TypeScript makes it a `require` in the
// CommonJS build, and a missing package is only noticed when metrics are asked for.
const importApi: OpenTelemetryImporter = () => import('@opentelemetry/api');

let loaded: Promise<OpenTelemetryApi | null> | undefined;

const isApi = (m: unknown): m is OpenTelemetryApi =>
  typeof m === 'object' &&
  m !== null &&
  typeof (m as { metrics?: { getMeterProvider?: unknown } }).metrics?.getMeterProvider ===
    'function';

async function load(importer: OpenTelemetryImporter): Promise<OpenTelemetryApi | null> {
  try {
    const m = await importer();
    // CommonJS interop may wrap the module in `default`.
    const candidate = isApi(m) ? m : (m as { default?: unknown } | null)?.default;
    return isApi(candidate) ? candidate : null;
  } catch {
    return null;
  }
}

/**
 * The API module, or `null` when it cannot be loaded. The default import is
 * tried once per process; a custom `importer` each time it is given.
 */
function loadOpenTelemetryApi(importer?: OpenTelemetryImporter): Promise<OpenTelemetryApi | null> {
  if (importer) return load(importer);
  loaded ??= load(importApi);
  return loaded;
}

/** The meter to record on, or `null` for the no-op path. */
export async function resolveMeter(options: MetricsOptions): Promise<Meter | null> {
  if (options.meterProvider) return options.meterProvider.getMeter(METER_NAME) as Meter;
  const api = await loadOpenTelemetryApi(options.importer);
  return api ? api.metrics.getMeterProvider().getMeter(METER_NAME) : null;
}

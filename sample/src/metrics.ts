/**
 * `GET /metrics`: the election's OpenTelemetry metrics (docs/metrics.md) in
 * Prometheus text format, through the OpenTelemetry SDK and its Prometheus
 * exporter (used as a pull reader: Nest serves the page, no second port).
 */
import {
  Controller,
  Get,
  Header,
  Injectable,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import {
  instrumentElection,
  MasterElectionService,
  type DetachMetrics,
} from 'nestjs-master-election';
import { SampleStore, SampleTelemetry } from './store.js';

/** Records the election's metrics on the app's meter provider (the store's are recorded by sample/src/store.ts). */
@Injectable()
export class ElectionMetrics implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly serializer = new PrometheusSerializer();
  private detach: DetachMetrics | undefined;

  constructor(
    private readonly election: MasterElectionService,
    private readonly telemetry: SampleTelemetry,
    private readonly store: SampleStore,
  ) {}

  /** The service has the client's public surface (state$, isMaster, currentTerm, fencingToken). */
  async onApplicationBootstrap(): Promise<void> {
    this.detach = await instrumentElection(this.election, {
      meterProvider: this.telemetry.provider,
      backend: this.store.backend,
    });
  }

  /** The metrics now, in Prometheus text format. */
  async scrape(): Promise<string> {
    const { resourceMetrics } = await this.telemetry.exporter.collect();
    return this.serializer.serialize(resourceMetrics);
  }

  onApplicationShutdown(): void {
    this.detach?.();
  }
}

@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: ElectionMetrics) {}

  @Get()
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  scrape(): Promise<string> {
    return this.metrics.scrape();
  }
}

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
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  instrumentElection,
  MasterElectionService,
  type DetachMetrics,
} from 'nestjs-master-election';

/** The app's meter provider, read by the Prometheus exporter; records the election's metrics. */
@Injectable()
export class ElectionMetrics implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly exporter = new PrometheusExporter({ preventServerStart: true });
  private readonly provider = new MeterProvider({ readers: [this.exporter] });
  private readonly serializer = new PrometheusSerializer();
  private detach: DetachMetrics | undefined;

  constructor(private readonly election: MasterElectionService) {}

  /** The service has the client's public surface (state$, isMaster, currentTerm, fencingToken). */
  async onApplicationBootstrap(): Promise<void> {
    this.detach = await instrumentElection(this.election, {
      meterProvider: this.provider,
      backend: 'doozer',
    });
  }

  /** The metrics now, in Prometheus text format. */
  async scrape(): Promise<string> {
    const { resourceMetrics } = await this.exporter.collect();
    return this.serializer.serialize(resourceMetrics);
  }

  async onApplicationShutdown(): Promise<void> {
    this.detach?.();
    await this.provider.shutdown();
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

/**
 * The election's store and the app's meter provider: a Doozer client on
 * `DOOZER_URI`, wrapped by `instrumentStore` so that `GET /metrics` also
 * shows renewal latency and lock errors (docs/metrics.md).
 *
 * The client is closed once the election has stopped with it: when the
 * election closes its lock, or at shutdown when no lock is open (Nest's
 * order of shutdown hooks across modules is not relied on).
 */
import { Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  DoozerElectionStore,
  instrumentStore,
  type ElectionLock,
  type ElectionStore,
} from 'nestjs-master-election';
import { DoozerClient } from 'nestjs-master-election/doozer';
import type { SampleConfig } from './config.js';

/** The app's meter provider, read by its Prometheus exporter (a pull reader). */
@Injectable()
export class SampleTelemetry implements OnApplicationShutdown {
  readonly exporter = new PrometheusExporter({ preventServerStart: true });
  readonly provider = new MeterProvider({ readers: [this.exporter] });

  async onApplicationShutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}

/** Opens the election's store; closes the client it opened on shutdown. */
@Injectable()
export class SampleStore implements OnApplicationShutdown {
  private client: DoozerClient | undefined;
  private openLocks = 0;

  constructor(
    private readonly config: ConfigService<SampleConfig, true>,
    private readonly telemetry: SampleTelemetry,
  ) {}

  /** The `store` option of the election: called once at bootstrap (again on a retry). */
  async open(): Promise<ElectionStore> {
    await this.client?.close();
    const client = await DoozerClient.connect(this.config.get('DOOZER_URI', { infer: true }), {
      bootUri: this.config.get('DOOZER_BOOT_URI', { infer: true }),
    });
    this.client = client;
    const doozer = new DoozerElectionStore(client);
    const store: ElectionStore = {
      backend: doozer.backend,
      openLock: async (request) => {
        const lock = await doozer.openLock(request);
        this.openLocks += 1;
        return this.closingClient(lock, client);
      },
      toString: () => doozer.toString(),
    };
    return instrumentStore(store, { meterProvider: this.telemetry.provider });
  }

  /** Closes the client unless a lock still uses it (its close() then closes the client). */
  async onApplicationShutdown(): Promise<void> {
    if (this.openLocks === 0) await this.client?.close();
  }

  /** `lock`, whose close() also closes `client` once no other lock is open. */
  private closingClient(lock: ElectionLock, client: DoozerClient): ElectionLock {
    let closed: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closed ??= lock.close().finally(async () => {
        this.openLocks -= 1;
        if (this.openLocks === 0) await client.close();
      }));
    return new Proxy(lock, {
      get(target, key) {
        if (key === 'close') return close;
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
      },
    });
  }
}

/** {@link SampleTelemetry} and {@link SampleStore}, for the election module and the app. */
@Module({ providers: [SampleTelemetry, SampleStore], exports: [SampleTelemetry, SampleStore] })
export class SampleStoreModule {}

/**
 * The election's store and the app's meter provider: the store named by
 * `ELECTION_URI` (by its scheme: Doozer, etcd or PostgreSQL) or, without it,
 * a Doozer client on `DOOZER_URI`; wrapped by `instrumentStore` so that
 * `GET /metrics` also shows renewal latency and lock errors (docs/metrics.md).
 *
 * The connection is closed once the election has stopped with it: when the
 * election closes its lock, or at shutdown when no lock is open (Nest's
 * order of shutdown hooks across modules is not relied on).
 */
import { Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { instrumentStore, type ElectionLock, type ElectionStore } from 'nestjs-master-election';
import { storeTarget, type SampleBackend, type SampleConfig } from './config.js';
import { connectStore, type StoreConnection } from './store-connection.js';

/** The app's meter provider, read by its Prometheus exporter (a pull reader). */
@Injectable()
export class SampleTelemetry implements OnApplicationShutdown {
  readonly exporter = new PrometheusExporter({ preventServerStart: true });
  readonly provider = new MeterProvider({ readers: [this.exporter] });

  async onApplicationShutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}

/** Opens the election's store; closes the connection it opened on shutdown. */
@Injectable()
export class SampleStore implements OnApplicationShutdown {
  private connection: StoreConnection | undefined;
  private openLocks = 0;

  constructor(
    private readonly config: ConfigService<SampleConfig, true>,
    private readonly telemetry: SampleTelemetry,
  ) {}

  /** The backend the configuration names (`doozer`, `etcd` or `postgres`), for the metrics' labels. */
  get backend(): SampleBackend {
    return storeTarget(this.env()).backend;
  }

  /** The `store` option of the election: called once at bootstrap (again on a retry). */
  async open(): Promise<ElectionStore> {
    await this.connection?.close();
    const connection = await connectStore(storeTarget(this.env()));
    this.connection = connection;
    const inner = connection.store;
    const store: ElectionStore = {
      backend: inner.backend,
      openLock: async (request) => {
        const lock = await inner.openLock(request);
        this.openLocks += 1;
        return this.closingConnection(lock, connection);
      },
      toString: () => inner.toString(),
    };
    return instrumentStore(store, { meterProvider: this.telemetry.provider });
  }

  /** Closes the connection unless a lock still uses it (its close() then closes the connection). */
  async onApplicationShutdown(): Promise<void> {
    if (this.openLocks === 0) await this.connection?.close();
  }

  private env(): Pick<SampleConfig, 'ELECTION_URI' | 'DOOZER_URI' | 'DOOZER_BOOT_URI'> {
    return {
      ELECTION_URI: this.config.get('ELECTION_URI', { infer: true }),
      DOOZER_URI: this.config.get('DOOZER_URI', { infer: true }),
      DOOZER_BOOT_URI: this.config.get('DOOZER_BOOT_URI', { infer: true }),
    };
  }

  /** `lock`, whose close() also closes `connection` once no other lock is open. */
  private closingConnection(lock: ElectionLock, connection: StoreConnection): ElectionLock {
    let closed: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closed ??= lock.close().finally(async () => {
        this.openLocks -= 1;
        if (this.openLocks === 0) await connection.close();
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

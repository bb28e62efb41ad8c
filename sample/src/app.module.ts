import { Module, type DynamicModule } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { ScheduleModule } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import {
  MasterElectionHealthIndicator,
  MasterElectionModule,
  type MasterElectionModuleOptions,
} from 'nestjs-master-election';
import { LOOPBACK, validateEnv, type SampleConfig } from './config.js';
import { ElectionController } from './election.controller.js';
import { ElectionEvents } from './election-events.service.js';
import { HealthController } from './health.controller.js';
import { LeaderJob } from './leader-job.service.js';
import { ElectionMetrics, MetricsController } from './metrics.js';
import { SampleStore, SampleStoreModule } from './store.js';

/** Options of {@link AppModule.forRoot}. */
export interface AppModuleOptions {
  /** The port the HTTP server is bound to: the election advertises `127.0.0.1:<httpPort>`. */
  readonly httpPort: number;
}

/**
 * The election's options, from the configuration; the store is the one
 * `ELECTION_URI` (or `DOOZER_URI`) names, with metrics (sample/src/store.ts).
 */
export function electionOptions(
  config: ConfigService<SampleConfig, true>,
  store: SampleStore,
): MasterElectionModuleOptions {
  const get = <K extends keyof SampleConfig>(key: K): SampleConfig[K] =>
    config.get(key, { infer: true });
  return {
    store: () => store.open(),
    name: get('ELECTION_NAME'),
    // The address is this replica's identity in the election file; making it
    // the HTTP address lets anyone who reads the master reach it.
    address: `${LOOPBACK}:${get('httpPort')}`,
    leaseMs: get('ELECTION_LEASE_MS'),
    renewDeadlineMs: get('ELECTION_RENEW_DEADLINE_MS'),
    retryPeriodMs: get('ELECTION_RETRY_PERIOD_MS'),
    // LOG_LEVEL=debug shows the engine's decisions and skipped leader jobs (once per term).
    logLevel: get('LOG_LEVEL'),
  };
}

/**
 * The sample application: a leader-only job, election event logging,
 * `GET /election`, `GET /health` and `GET /metrics`.
 */
@Module({})
export class AppModule {
  static forRoot({ httpPort }: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot({
          isGlobal: true,
          ignoreEnvFile: true, // the environment only: no .env file is read
          validate: validateEnv,
          load: [() => ({ httpPort })],
        }),
        ScheduleModule.forRoot(),
        TerminusModule,
        SampleStoreModule,
        MasterElectionModule.forRootAsync({
          // Imported here, the store's module is shut down after the election.
          imports: [ConfigModule, SampleStoreModule],
          inject: [ConfigService, SampleStore],
          useFactory: electionOptions,
        }),
      ],
      controllers: [ElectionController, HealthController, MetricsController],
      providers: [ElectionEvents, LeaderJob, MasterElectionHealthIndicator, ElectionMetrics],
    };
  }
}

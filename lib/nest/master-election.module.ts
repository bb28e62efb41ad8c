import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { ElectionConfigError } from '../election/index.js';
import {
  MASTER_ELECTION_INSTANCE,
  MASTER_ELECTION_REGISTRATION,
  getMasterElectionToken,
} from './master-election.constants.js';
import { MasterElectionCoreModule } from './master-election-core.module.js';
import type { MasterElectionModuleAsyncOptions } from './master-election.interfaces.js';
import { ASYNC_NEEDS_NAME } from './master-election.messages.js';
import {
  ConfigurableMasterElectionModule,
  MASTER_ELECTION_ASYNC_OPTIONS_TYPE,
  MASTER_ELECTION_OPTIONS_TYPE,
  type MasterElectionRegistration,
} from './master-election.module-definition.js';
import { MasterElectionOrchestrator } from './master-election.orchestrator.js';
import { MasterElectionService } from './master-election.service.js';
import { MasterOnlyGate } from './master-only.gate.js';

/** Options of {@link MasterElectionModule.forRoot}: the election's options plus `isGlobal` and `isDefault`. */
export type MasterElectionModuleForRootOptions = typeof MASTER_ELECTION_OPTIONS_TYPE;

function complete(
  definition: DynamicModule,
  registration: MasterElectionRegistration,
): DynamicModule {
  const providers: Provider[] = [
    ...(definition.providers ?? []),
    { provide: MASTER_ELECTION_REGISTRATION, useValue: registration },
    { provide: MASTER_ELECTION_INSTANCE, useClass: MasterElectionService },
    MasterElectionOrchestrator,
    MasterOnlyGate,
  ];
  const exported: (string | typeof MasterElectionService)[] = [];
  if (registration.staticName !== undefined) {
    const token = getMasterElectionToken(registration.staticName);
    providers.push({ provide: token, useExisting: MASTER_ELECTION_INSTANCE });
    exported.push(token);
  }
  if (registration.isDefault) {
    providers.push({ provide: MasterElectionService, useExisting: MASTER_ELECTION_INSTANCE });
    exported.push(MasterElectionService);
  }
  return {
    ...definition,
    imports: [...(definition.imports ?? []), MasterElectionCoreModule],
    providers,
    exports: [...(definition.exports ?? []), ...exported, MasterElectionCoreModule],
  };
}

/**
 * Master election for a Nest application. Register it once per election:
 *
 * ```ts
 * MasterElectionModule.forRoot({ uri: 'doozer:?ca=10.0.0.1:8046', name: 'billing' })
 * MasterElectionModule.forRootAsync({
 *   imports: [ConfigModule],
 *   inject: [ConfigService],
 *   useFactory: (config: ConfigService) => ({ uri: config.getOrThrow('DOOZER_URI'), name: 'billing' }),
 * })
 * ```
 *
 * Each registration provides a {@link MasterElectionService} (injectable as
 * `MasterElectionService` for the default registration, and with
 * `@InjectMasterElection(name)`), delivers the election's events to methods
 * decorated with `@OnBecomeMaster()`, `@OnBecomeSlave()`,
 * `@OnElectionError()` and `@OnElectionFatal()`, and lets `@MasterOnly()`
 * methods run only on the master. Registrations of one application using
 * the same `uri` share one Doozer connection.
 */
@Module({})
export class MasterElectionModule extends ConfigurableMasterElectionModule {
  /** Registers an election with options known up front. */
  static override forRoot(options: MasterElectionModuleForRootOptions): DynamicModule {
    const name = (options as { name?: unknown } | undefined)?.name;
    return complete(super.forRoot(options), {
      staticName: typeof name === 'string' ? name : undefined,
      isDefault: options.isDefault ?? true,
    });
  }

  /** Registers an election whose options come from a factory, a class, or an existing provider. */
  static override forRootAsync(options: MasterElectionModuleAsyncOptions): DynamicModule {
    const { name, ...rest } = options;
    const isDefault = rest.isDefault ?? true;
    if (!isDefault && name === undefined) throw new ElectionConfigError('name', ASYNC_NEEDS_NAME);
    // The factory may leave out a static `name`; the service fills it in and checks it.
    const definition = super.forRootAsync(rest as typeof MASTER_ELECTION_ASYNC_OPTIONS_TYPE);
    return complete(definition, { staticName: name, isDefault });
  }
}

import { ConfigurableModuleBuilder } from '@nestjs/common';
import type {
  MasterElectionModuleExtras,
  MasterElectionModuleOptions,
} from './master-election.interfaces.js';

/** The static facts of one registration, known when the module is defined. */
export interface MasterElectionRegistration {
  /** The election name given statically (always for `forRoot`, optionally for `forRootAsync`). */
  readonly staticName: string | undefined;
  readonly isDefault: boolean;
}

export const {
  ConfigurableModuleClass: ConfigurableMasterElectionModule,
  MODULE_OPTIONS_TOKEN: MASTER_ELECTION_MODULE_OPTIONS,
  OPTIONS_TYPE: MASTER_ELECTION_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: MASTER_ELECTION_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<MasterElectionModuleOptions>({ moduleName: 'MasterElection' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createMasterElectionOptions')
  .setExtras<MasterElectionModuleExtras>(
    { isGlobal: true, isDefault: true },
    (definition, extras) => ({ ...definition, global: extras.isGlobal !== false }),
  )
  .build();

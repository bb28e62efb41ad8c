/** The Nest integration of the master election (without the terminus health indicator, see `master-election.health.ts`). */
export { MasterElectionModule } from './master-election.module.js';
export type { MasterElectionModuleForRootOptions } from './master-election.module.js';
export { MasterElectionService } from './master-election.service.js';
export { MasterElectionRegistry } from './master-election.registry.js';
export type { MasterElectionLogLevel } from './master-election.logger.js';
export type {
  MasterElectionAsyncModuleOptions,
  MasterElectionModuleAsyncOptions,
  MasterElectionModuleExtras,
  MasterElectionOptionsFactory,
  MasterElectionModuleOptions,
  MasterElectionTimingOptions,
  OnUnreachable,
  WaitForMastershipOptions,
} from './master-election.interfaces.js';
export {
  MasterElectionConnectError,
  MasterElectionNotRunningError,
  MasterHandlerTimeoutError,
  MastershipWaitError,
  type MastershipWaitReason,
} from './master-election.errors.js';
export { getMasterElectionToken } from './master-election.constants.js';
export { defaultAddress } from './master-election.options.js';
export {
  OnBecomeMaster,
  OnBecomeSlave,
  OnElectionError,
  OnElectionFatal,
} from './decorators/election-event.decorators.js';
export { MasterOnly } from './decorators/master-only.decorator.js';
export { InjectMasterElection } from './decorators/inject-master-election.decorator.js';
export {
  MasterElectionGuard,
  MasterElectionInterceptor,
  MasterOnlyRoute,
  NotMasterException,
  UnknownRouteElectionError,
} from './master-only-route.js';

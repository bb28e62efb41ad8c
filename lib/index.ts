/** `nestjs-master-election`: the Nest module and the election engine. */
export * from './election/index.js';
export * from './nest/index.js';
export {
  MasterElectionHealthIndicator,
  type MasterElectionHealthDetails,
  type MasterElectionHealthResult,
} from './nest/master-election.health.js';
export { DoozerElectionStore, type DoozerLockClient } from './backends/doozer/index.js';

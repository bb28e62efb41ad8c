/** `nestjs-master-election`: the Nest module and the election engine. */
export * from './entries/election.js';
export * from './nest/index.js';
export {
  MasterElectionHealthIndicator,
  type MasterElectionHealthDetails,
  type MasterElectionHealthResult,
} from './nest/master-election.health.js';
export * from './metrics/index.js';
export { DoozerElectionStore, type DoozerLockClient } from './backends/doozer/index.js';

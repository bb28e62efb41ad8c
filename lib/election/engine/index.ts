/** The election engine on the storage port: the pure rules, the runner, and the public client. */
export {
  MasterElection,
  type ElectionDiagnostics,
  type ForcedElection,
  type MasterElectionOpenOptions,
} from './client.js';
export {
  decide,
  judgeTerm,
  isFree,
  jitterWindow,
  type DecideOptions,
  type Decision,
  type ElectionView,
  type Phase,
  type TermFacts,
} from './decide.js';
export type { ElectionHealth } from './state.js';

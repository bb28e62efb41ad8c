/** The election engine: framework-free master election on any storage port (Doozer today). */
export {
  MasterElection,
  type ElectionDiagnostics,
  type ElectionHealth,
  type ForcedElection,
  type MasterElectionOpenOptions,
} from './engine/index.js';
export { systemClock, type Clock } from './clock.js';
export {
  BecomeMasterTimeoutError,
  ElectionError,
  ElectionConfigError,
  ElectionFatalError,
  LockArgumentError,
  MasterStepDownError,
  type StepDownReason,
} from './errors.js';
export {
  type ResolvedElectionOptions,
  DEFAULT_LEASE_MS,
  DEFAULT_RENEW_DEADLINE_MS,
  DEFAULT_RETRY_PERIOD_MS,
  resolveElectionOptions,
  validateAddress,
  validateElectionName,
} from './options.js';
export { electionPath, leasePath, type LeaseRecord } from './lease.js';
export type {
  ElectionLogger,
  ElectionRole,
  ElectionState,
  MasterElectionEventReceiver,
  MasterElectionOptions,
  MasterTerm,
} from './types.js';
export type {
  CreateResult,
  ElectionLock,
  ElectionStore,
  LockCallOptions,
  LockCapabilities,
  LockErrorKind,
  LockEvent,
  LockRead,
  LockRecord,
  LockRecordState,
  LockRequest,
  LockSnapshot,
  LockStatus,
  LockTerm,
  LockTiming,
  LockVersion,
  RenewResult,
} from './port.js';

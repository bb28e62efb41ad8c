/** The Doozer backend of the election engine's storage port. */
export { DoozerElectionStore } from './store.js';
export type { DoozerLockClient } from './session.js';
export { MasterElectionClient } from './election-client.js';

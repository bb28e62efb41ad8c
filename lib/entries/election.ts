/**
 * The `nestjs-master-election/election` entry: the store-neutral engine
 * (lib/election) plus `MasterElectionClient`, whose
 * `create(doozerClient, ...)` runs it on the Doozer lock, as this entry has
 * always offered. Composing here keeps lib/election free of any backend.
 */
export * from '../election/index.js';
export { MasterElectionClient } from '../backends/doozer/election-client.js';

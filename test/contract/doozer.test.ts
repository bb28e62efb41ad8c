/**
 * The storage port's contract against the Doozer lock on the embedded
 * server (with a read-write secret, so that the store's description is
 * checked not to leak it).
 */
import { DoozerClient } from '../../lib/doozer/index.js';
import { DoozerElectionStore } from '../../lib/index.js';
import { DoozerServer } from '../../lib/testing/index.js';
import { lockContract } from './lock-contract.js';

/** Holds "secret" so that the contract's check of `String(store)` would catch a leak. */
const SK = 'contract-secret-sk';

lockContract('doozer (embedded server)', async () => {
  const server = await DoozerServer.start({ heartbeatMs: 0, rwSecret: SK });
  const clients: DoozerClient[] = [];
  return {
    async connect() {
      const client = await DoozerClient.connect(`${server.uri}&sk=${SK}`, {
        reconnect: { initialDelayMs: 5, maxDelayMs: 50 },
      });
      clients.push(client);
      return new DoozerElectionStore(client);
    },
    // Names that are not one Doozer path component: they would fail on the
    // wire, or alias another election's files.
    badNames: ['a/b', '../jobs', 'jobs/', 'a b', 'master*', 'x\n', 'ü', '*'],
    // Dropping every connection ends each WAIT with a lost connection.
    forceReset: () => Promise.resolve(server.dropConnections()),
    async teardown() {
      for (const c of clients.splice(0)) await c.close();
      await server.close();
    },
  };
});

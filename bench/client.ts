/**
 * Benchmark of the Doozer client (`npm run bench:client`).
 *
 * Starts the embedded server in a child process (its CLI, so client and
 * server run on different cores), then measures over loopback:
 * - pipelined GET and SET throughput (ops/s) and p50/p99 latency at
 *   concurrency 1 and 64;
 * - heap and RSS growth of the client for 10,000 outstanding WAITs, and the
 *   time for close() to reject them all.
 *
 * Prints exactly one JSON line of figures on stdout.
 *
 * Environment: BENCH_PHASE_MS (measured time per phase, default 2000),
 * BENCH_WAITS (outstanding WAITs, default 10000).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DoozerClient } from '../lib/doozer/index.js';

const PHASE_MS = Number(process.env.BENCH_PHASE_MS ?? 2000);
const WARMUP_MS = Math.min(500, PHASE_MS / 4);
const WAITS = Number(process.env.BENCH_WAITS ?? 10_000);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Phase {
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  ops: number;
}

/** Starts `dist/lib/bin/doozer-dev-server.js` and resolves with its child and URI. */
async function startServer(): Promise<{ child: ChildProcess; uri: string }> {
  const cli = fileURLToPath(new URL('../lib/bin/doozer-dev-server.js', import.meta.url));
  const child = spawn(
    process.execPath,
    [cli, '--listen', '127.0.0.1:0', '--heartbeat-ms', '0', '--history', '2000'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`the server exited early (code ${String(code)})`);
  });
  const listening = (async () => {
    for await (const line of lines) {
      const m = /uri=(\S+)/.exec(line);
      if (m?.[1]) return m[1];
    }
    throw new Error('the server printed no listening line');
  })();
  const uri = await Promise.race([listening, exited]);
  exited.catch(() => {});
  return { child, uri };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length));
  return sorted[i]!;
}

const round = (n: number, digits = 3): number => Number(n.toFixed(digits));

/**
 * Runs `op` from `concurrency` loops for a warm-up and then PHASE_MS,
 * recording the latency of every measured op.
 */
async function phase(
  concurrency: number,
  op: (worker: number, i: number) => Promise<unknown>,
): Promise<Phase> {
  let measuring = false;
  let stop = false;
  const latencies: number[] = [];
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; !stop; i++) {
      const t0 = performance.now();
      await op(w, i);
      if (measuring) latencies.push(performance.now() - t0);
    }
  };
  const workers = Array.from({ length: concurrency }, (_, w) => worker(w));
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  measuring = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, PHASE_MS));
  measuring = false;
  const elapsed = performance.now() - start;
  stop = true;
  await Promise.all(workers);
  const sorted = Float64Array.from(latencies).sort();
  return {
    opsPerSec: Math.round((latencies.length * 1000) / elapsed),
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    ops: latencies.length,
  };
}

async function waitMemory(client: DoozerClient): Promise<Record<string, number>> {
  const base = await client.rev();
  gc();
  const before = process.memoryUsage();
  const waits = Array.from({ length: WAITS }, (_, i) =>
    client.wait(`/bench/quiet/w${i}`, base + 1_000_000).catch((e: unknown) => e),
  );
  await client.nop(); // answered after every WAIT went out in the same batch
  gc();
  const after = process.memoryUsage();
  const t0 = performance.now();
  await client.close();
  const rejected = (await Promise.all(waits)).filter((e) => e instanceof Error).length;
  const closeMs = performance.now() - t0;
  if (rejected !== WAITS) throw new Error(`only ${rejected} of ${WAITS} WAITs were rejected`);
  return {
    waits: WAITS,
    heapDeltaBytes: after.heapUsed - before.heapUsed,
    rssDeltaBytes: after.rss - before.rss,
    heapBytesPerWait: Math.round((after.heapUsed - before.heapUsed) / WAITS),
    closeRejectAllMs: round(closeMs, 1),
  };
}

async function main(): Promise<void> {
  const { child, uri } = await startServer();
  try {
    // Memory first, on its own client, before the throughput phases churn the heap.
    const memory = await waitMemory(await DoozerClient.connect(uri, { reconnect: false }));
    const client = await DoozerClient.connect(uri, { reconnect: false });
    const value = 'x'.repeat(64);
    const keys = Array.from({ length: 64 }, (_, i) => `/bench/k${i}`);
    await Promise.all(keys.map((k) => client.set(k, -1, value)));

    const get1 = await phase(1, (_, i) => client.get(keys[i % 64]!));
    const get64 = await phase(64, (w) => client.get(keys[w]!));
    const set1 = await phase(1, () => client.set('/bench/s0', -1, value));
    const set64 = await phase(64, (w) => client.set(keys[w]!, -1, value));
    await client.close();

    const figures = {
      bench: 'doozer-client',
      node: process.version,
      phaseMs: PHASE_MS,
      get: { c1: get1, c64: get64 },
      set: { c1: set1, c64: set64 },
      outstandingWaits: memory,
    };
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});

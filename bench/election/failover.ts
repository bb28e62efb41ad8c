/**
 * Crash failover: three participants as child processes (child.ts) on the
 * backend's shortest timing; kill -9 of the master, time to another's
 * becomeMaster; a replacement is started each round.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { BenchBackend } from './servers.js';
import { now, summary } from './stats.js';

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));

export async function failover(
  backend: BenchBackend,
  rounds: number,
): Promise<Record<string, unknown>> {
  const timing = backend.shortestTiming;
  const server = await backend.server();
  const name = `failover-${process.pid}`;
  const children = new Map<string, ChildProcess>();
  const masters: { address: string; t: number }[] = [];
  let onMaster: (() => void) | null = null;
  let seq = 0;
  const startOne = async (): Promise<void> => {
    const address = `127.0.0.1:${20_000 + seq++}`;
    const child = spawn(
      process.execPath,
      [CHILD, backend.name, server.uri, name, address, ...Object.values(timing).map(String)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.set(address, child);
    const lines = createInterface({ input: child.stdout });
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) =>
        reject(new Error(`${backend.name}: a participant exited (${code})`)),
      );
      lines.on('line', (line) => {
        const ev = JSON.parse(line) as { ev: string; t: number };
        if (ev.ev === 'ready') resolve();
        if (ev.ev === 'master') {
          masters.push({ address, t: ev.t });
          onMaster?.();
        }
      });
    });
  };
  const nextMaster = (after: number, what: string): Promise<{ address: string; t: number }> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        onMaster = null;
        reject(new Error(`${backend.name}: ${what}: no master within 60 s`));
      }, 60_000);
      const check = (): void => {
        const m = masters.find((x) => x.t > after);
        if (m) {
          onMaster = null;
          clearTimeout(timer);
          resolve(m);
        }
      };
      onMaster = check;
      check();
    });
  const samples: number[] = [];
  try {
    await Promise.all([startOne(), startOne(), startOne()]);
    let current = await nextMaster(0, 'first master');
    for (let i = 0; i < rounds; i++) {
      const victim = children.get(current.address)!;
      children.delete(current.address);
      victim.removeAllListeners('exit');
      const killedAt = now();
      victim.kill('SIGKILL');
      const replacement = startOne();
      current = await nextMaster(killedAt, `failover round ${i}`);
      samples.push(current.t - killedAt);
      if (victim.exitCode === null && victim.signalCode === null) await once(victim, 'exit');
      await replacement;
    }
  } finally {
    const exits = [...children.values()]
      .filter((c) => c.exitCode === null && c.signalCode === null)
      .map((c) => {
        c.removeAllListeners('exit');
        return once(c, 'exit');
      });
    for (const child of children.values()) child.kill('SIGKILL');
    await Promise.all(exits);
    await server.settle();
    await server.close();
  }
  // etcd expires the lease itself: a TTL of whole seconds, raised to etcd's minimum (2 s with the
  // default 1 s election timeout), checked by etcd's lessor every 500 ms.
  const lease =
    backend.name === 'etcd'
      ? Math.max(2000, Math.ceil(timing.leaseMs / 1000) * 1000) + 500
      : timing.leaseMs;
  const bound = lease + timing.retryPeriodMs + 100;
  return { ...summary(samples), ...timing, bound };
}

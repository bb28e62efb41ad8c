/**
 * Benchmark of the `--run` dead man's switch (`npm run bench:cli`), the
 * scenario of issue 17: two `elect-run-command --run` replicas on the
 * embedded Doozer server, the master's CLI frozen with SIGSTOP. Each child
 * appends CLOCK_MONOTONIC timestamps every 5 ms. Per round it measures:
 * - stopAfterFreezeMs: the frozen master's child's last tick, after the freeze;
 * - takeoverAfterFreezeMs: the other replica's child's first tick, after the freeze;
 * - gapMs: the second minus the first (negative: both children ran at once;
 *   issue 17 measured about -1,900 ms before the switch).
 *
 * Prints exactly one JSON line of figures on stdout.
 *
 * Environment: BENCH_ROUNDS (default 3), BENCH_LEASE_MS (default 1000;
 * renew deadline 60%, retry period 20% of it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DoozerServer } from '../lib/testing/index.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const LEASE_MS = Number(process.env.BENCH_LEASE_MS ?? 1000);
const CLI = fileURLToPath(new URL('../cjs/cli/elect-run-command.js', import.meta.url));
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

const WORKER = `const fs = require('fs');
const ticks = process.argv[2];
const tick = () => fs.appendFileSync(ticks, Number(process.hrtime.bigint()) / 1e6 + '\\n');
tick();
setInterval(tick, 5);
process.on('SIGTERM', () => { tick(); process.exit(0); });
`;

function ticks(file: string): number[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function until(cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Round {
  stopAfterFreezeMs: number;
  takeoverAfterFreezeMs: number;
  gapMs: number;
}

async function round(uri: string, dir: string, n: number): Promise<Round> {
  const timing = [
    '--lease-ms',
    String(LEASE_MS),
    '--renew-deadline-ms',
    String(LEASE_MS * 0.6),
    '--retry-period-ms',
    String(LEASE_MS * 0.2),
  ];
  const start = (tag: string): ChildProcess =>
    spawn(
      process.execPath,
      [
        CLI,
        '--name',
        `bench${n}`,
        '--participate',
        ...timing,
        '--run',
        '--',
        process.execPath,
        join(dir, 'worker.js'),
        join(dir, `${n}${tag}.ticks`),
      ],
      { env: { ...process.env, DOOZER_URI: uri }, stdio: 'ignore', detached: true },
    );
  const a = start('a');
  await until(() => ticks(join(dir, `${n}a.ticks`)).length > 0, "A's child");
  const b = start('b');
  // B has joined once it has read the election: give it a few renewals.
  const joined = now() + LEASE_MS;
  await until(() => now() > joined, 'B to join');
  const frozenAt = now();
  a.kill('SIGSTOP');
  await until(() => ticks(join(dir, `${n}b.ticks`)).length > 0, "B's child");
  const aTicks = ticks(join(dir, `${n}a.ticks`));
  const bFirst = ticks(join(dir, `${n}b.ticks`))[0]!;
  const aLast = aTicks[aTicks.length - 1]!;
  for (const p of [a, b]) {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
  // Their watchdogs see the pipes close and stop the children.
  await until(() => {
    const t = ticks(join(dir, `${n}b.ticks`));
    return t.length > 0 && now() - t[t.length - 1]! > 200;
  }, 'the children to stop');
  return {
    stopAfterFreezeMs: aLast - frozenAt,
    takeoverAfterFreezeMs: bFirst - frozenAt,
    gapMs: bFirst - aLast,
  };
}

const summary = (xs: number[]): { min: number; median: number; max: number } => {
  const s = [...xs].sort((x, y) => x - y);
  const r = (v: number): number => Math.round(v * 10) / 10;
  return { min: r(s[0]!), median: r(s[Math.floor(s.length / 2)]!), max: r(s[s.length - 1]!) };
};

async function main(): Promise<void> {
  const server = await DoozerServer.start({ host: '127.0.0.1', port: 0, heartbeatMs: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'bench-cli-'));
  writeFileSync(join(dir, 'worker.js'), WORKER);
  const rounds: Round[] = [];
  try {
    for (let n = 0; n < ROUNDS; n++) rounds.push(await round(server.uri, dir, n));
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const gaps = rounds.map((r) => r.gapMs);
  console.log(
    JSON.stringify({
      bench: 'cli-frozen-master',
      rounds: ROUNDS,
      leaseMs: LEASE_MS,
      renewDeadlineMs: LEASE_MS * 0.6,
      overlappingRounds: gaps.filter((g) => g <= 0).length,
      gapMs: summary(gaps),
      stopAfterFreezeMs: summary(rounds.map((r) => r.stopAfterFreezeMs)),
      takeoverAfterFreezeMs: summary(rounds.map((r) => r.takeoverAfterFreezeMs)),
    }),
  );
}

void main();

/**
 * The ticking `--run` child of the handover tests: it appends its pid and
 * CLOCK_MONOTONIC time to `<tag>.ticks` every 10 ms (once at start, once when
 * it stops on SIGTERM), so that a test can check that no two children ran
 * at the same time. It also writes its pid to `<tag>.pid` and the backend
 * variables it was given to `<tag>.pid.env` (JSON).
 */
import { writeFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { Workspace } from './harness.js';

/** Writes `worker.js` into the workspace. */
export function writeTickWorker(ws: Workspace): void {
  writeFileSync(
    ws.path('worker.js'),
    `const fs = require('fs');
const [ticks, pidFile] = process.argv.slice(2);
const vars = {};
for (const k of ['DOOZER_URI', 'DOOZER_BOOT_URI', 'ETCD_URI', 'POSTGRES_URI']) vars[k] = process.env[k];
fs.writeFileSync(pidFile + '.env', JSON.stringify(vars));
fs.writeFileSync(pidFile, process.pid + '\\n');
const tick = () => fs.appendFileSync(ticks, process.pid + ' ' + Number(process.hrtime.bigint()) / 1e6 + '\\n');
// The handler first: a tick seen by a test means that SIGTERM is handled.
process.on('SIGTERM', () => { tick(); process.exit(0); });
tick();
setInterval(tick, 10);
`,
  );
}

/** The `--run` arguments of a replica whose child ticks into `<tag>.ticks`. */
export function tickRun(ws: Workspace, tag: string): string[] {
  return [
    '--run',
    '--',
    process.execPath,
    ws.path('worker.js'),
    ws.path(`${tag}.ticks`),
    ws.path(`${tag}.pid`),
  ];
}

/** One child's running interval (first to last tick). */
export interface Interval {
  readonly who: string;
  readonly start: number;
  readonly end: number;
}

/** The running interval of every child, from the ticks files of `tags`, by start. */
export function intervals(ws: Workspace, tags: readonly string[]): Interval[] {
  const byPid = new Map<string, { start: number; end: number }>();
  for (const tag of tags) {
    for (const line of ws.lines(`${tag}.ticks`)) {
      const [pid, time] = line.split(' ');
      const t = Number(time);
      const key = `${tag}:${pid}`;
      const i = byPid.get(key);
      if (i) i.end = Math.max(i.end, t);
      else byPid.set(key, { start: t, end: t });
    }
  }
  return [...byPid].map(([who, i]) => ({ who, ...i })).sort((x, y) => x.start - y.start);
}

/** Fails when two children ran at the same time; returns the intervals. */
export function expectNoOverlap(ws: Workspace, tags: readonly string[] = ['a', 'b']): Interval[] {
  const all = intervals(ws, tags);
  for (let k = 1; k < all.length; k++) {
    const [prev, next] = [all[k - 1]!, all[k]!];
    expect(
      next.start,
      `${next.who} started while ${prev.who} ran: ${JSON.stringify(all)}`,
    ).toBeGreaterThan(prev.end);
  }
  return all;
}

/** The pids of the children of `<tag>.ticks`. */
export const childPids = (ws: Workspace, tag: string): Set<string> =>
  new Set(ws.lines(`${tag}.ticks`).map((l) => l.split(' ')[0]!));

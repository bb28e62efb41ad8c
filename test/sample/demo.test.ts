/**
 * `npm run demo` end to end: the compiled demo (dist/, built by the global
 * setup) with `--short` timings, its own embedded server and three replica
 * processes.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO_TIMINGS } from '../../sample/demo/timings.js';
import { waitFor } from '../support/wait.js';
import { DemoRun, expectNothingLeft, isAlive, RUN_MS } from './demo-run.js';

describe('npm run demo', () => {
  const runs: DemoRun[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const run of runs.splice(0)) {
      run.destroy();
      await run.exited;
    }
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the demo in a fresh working directory (where it writes its timeline). */
  function start(...args: string[]): DemoRun {
    const dir = mkdtempSync(join(tmpdir(), 'demo-run-'));
    dirs.push(dir);
    const run = new DemoRun(args, dir);
    runs.push(run);
    return run;
  }

  it(
    'elects a master, fails over after a kill -9, hands over on SIGTERM, and prints the numbers',
    { timeout: RUN_MS + 20_000 },
    async () => {
      const demo = start('--short');
      const exit = await Promise.race([
        demo.exited,
        new Promise<never>((_, reject) =>
          setTimeout(
            () => reject(new Error(`demo still running after ${RUN_MS} ms:\n${demo.output}`)),
            RUN_MS,
          ).unref(),
        ),
      ]);
      expect(exit, demo.output).toEqual({ code: 0, signal: null });

      const { leaseMs, renewDeadlineMs, retryPeriodMs } = DEMO_TIMINGS.short;
      const number = (re: RegExp): number => Number(re.exec(demo.output)?.[1] ?? NaN);
      expect(demo.output).toMatch(
        /lease 1000 ms, renew deadline 700 ms, retry period 200 ms \(--short\)/,
      );
      expect(demo.output).toMatch(/^\s+A new election \(no lease yet\)/m);
      const firstElection = number(/^\s+first election\s+(\d+) ms\s/m);
      const failover = number(/^\s+failover\s+(\d+) ms\s/m);
      const handover = number(/^\s+handover\s+(\d+) ms\s/m);
      expect(demo.output).toMatch(
        /^\s+leader-only job\s+runs: A \d+, B \d+, C \d+; each one on the master of its term$/m,
      );

      // A new election waits out one lease; a dead master is replaced only once its
      // authority has surely ended (its renew deadline, counted from its last renewal);
      // a resigning master hands over at once.
      expect(firstElection).toBeGreaterThanOrEqual(leaseMs);
      expect(failover).toBeGreaterThanOrEqual(leaseMs - renewDeadlineMs);
      expect(handover).toBeLessThan(leaseMs);
      expect(demo.output).toContain(`bound: lease + retry period = ${leaseMs + retryPeriodMs} ms`);

      // The timeline, written where the demo ran, shows the three masters' terms
      // and the times measured.
      const path = /^Timeline\s+(\S+)/m.exec(demo.output)?.[1];
      expect(path, demo.output).toBe(join(dirs[0]!, 'demo-timeline.html'));
      expect(existsSync(path!)).toBe(true);
      const html = readFileSync(path!, 'utf8');
      const tokens = [...demo.output.matchAll(/^\s+master: .*, fencing token (\d+),/gm)].map((m) =>
        Number(m[1]),
      );
      expect(tokens).toHaveLength(3);
      expect(new Set(tokens).size).toBe(3);
      for (const token of tokens) {
        expect(html).toContain(`<g class="term" data-term="${token}"`);
        expect(html).toContain(`<tr data-term="${token}">`);
      }
      expect(html).toContain(`data-kind="first-election" data-ms="${firstElection}"`);
      expect(html).toContain(`data-kind="failover" data-ms="${failover}"`);
      expect(html).toContain(`data-kind="handover" data-ms="${handover}"`);

      // The Doozer server was the doozer-dev-server bin, stopped with the rest.
      expectNothingLeft(demo);
    },
  );

  it('cleans up its replicas and exits 130 on Ctrl-C', { timeout: RUN_MS }, async () => {
    const demo = start('--short');
    await demo.line(/^\s+master: /);
    demo.signal('SIGINT');
    expect(await demo.exited, demo.output).toEqual({ code: 130, signal: null });
    expect(demo.output).toMatch(/Interrupted \(SIGINT\): cleaning up/);
    expectNothingLeft(demo);
  });

  it(
    'a demo killed with SIGKILL leaves no replica nor server behind',
    { timeout: RUN_MS },
    async () => {
      const demo = start('--short');
      await demo.line(/^\s+master: /);
      const pids = demo.replicaPids();
      const server = demo.serverPid();
      expect(pids).toHaveLength(3);
      expect(server, demo.output).toBeGreaterThan(0);
      demo.signal('SIGKILL');
      await demo.exited;
      // Each child sees the pipe on its stdin close and shuts down on its own.
      await waitFor(
        () => [...pids, server!].every((pid) => !isAlive(pid)),
        'the replicas and the server to exit',
        { timeoutMs: 30_000 },
      );
    },
  );
});

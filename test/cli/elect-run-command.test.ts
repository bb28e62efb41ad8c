/**
 * End-to-end tests of `elect-run-command` that are Doozer's own: the
 * compiled CLI in child processes against the embedded Doozer server, given
 * through `$DOOZER_URI`. Every wait is on an event (an output line, a file's
 * content, a process's exit or death). What every backend does alike (the
 * hooks, `--run` supervision and signals, `--observe`, `--force-election`,
 * exit statuses, usage errors) is in on-every-backend*.test.ts, which runs
 * on Doozer too.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DoozerServer } from '../../lib/testing/index.js';
import { waitFor } from '../support/wait.js';
import { TIMING_FLAGS, WAIT_MS, Workspace, cleanEnv, isAlive } from './harness.js';

const A = '127.0.0.1:1001';
const B = '127.0.0.1:1002';

let server: DoozerServer;
let ws: Workspace;

beforeEach(async () => {
  server = await DoozerServer.start({ host: '127.0.0.1', port: 0, heartbeatMs: 0 });
  ws = new Workspace(cleanEnv({ DOOZER_URI: server.uri }));
});

afterEach(async () => {
  try {
    await ws.cleanup();
  } finally {
    server.resume();
    await server.close();
  }
});

/** Flags of a participant advertising `address`, with hooks appending `$MASTER` to files. */
function participant(address: string, tag: string): string[] {
  return [
    '--participate',
    '--address',
    address,
    ...TIMING_FLAGS,
    '--master-cmd',
    `printf '%s\\n' "$MASTER" >> ${ws.path(`${tag}.master`)}`,
    '--slave-cmd',
    `printf '%s\\n' "$MASTER" >> ${ws.path(`${tag}.slave`)}; printf '%s\\n' "$FENCING_TOKEN" >> ${ws.path(`${tag}.slave-token`)}`,
  ];
}

/** `--run` of a shell script; `$0` is the pid file (`<tag>.pid`) it should write. */
function run(tag: string, script: string): string[] {
  return ['--run', '--', 'sh', '-c', script, ws.path(`${tag}.pid`)];
}

describe('elect-run-command', () => {
  it('rejects bad command lines with exit status 2 and a usage message, never printing a secret', async () => {
    const cases: [string, string[], RegExp][] = [
      ['unknown flag', ['--bogus'], /unknown option '--bogus'/],
      ['no URI', [], /no Doozer URI/],
      ['bad URI', ['--doozer-uri', 'http://x'], /bad Doozer URI/],
      [
        'bad URI with a secret',
        ['--doozer-uri', 'doozer:?ca=bad!host&sk=hunter2'],
        /bad Doozer URI/,
      ],
      [
        'timings the engine refuses',
        ['--doozer-uri', server.uri, '--lease-ms', '500', '--renew-deadline-ms', '600'],
        /--renew-deadline-ms: must be less than leaseMs/,
      ],
      ['not a number', ['--doozer-uri', server.uri, '--lease-ms', 'soon'], /--lease-ms/],
      ['bad name', ['--doozer-uri', server.uri, '--name', 'a/b'], /invalid election name/],
      ['bad address', ['--doozer-uri', server.uri, '--address', 'nohost'], /invalid address/],
      ['--run without command', ['--doozer-uri', server.uri, '--participate', '--run'], /--run/],
      ['--run while passive', ['--doozer-uri', server.uri, '--run', '--', 'true'], /--participate/],
      ['stray operand', ['--doozer-uri', server.uri, 'true'], /unexpected argument "true"/],
    ];
    const clis = cases.map(([label, args]) => ws.start(label, args, { DOOZER_URI: '' }));
    await Promise.all(clis.map((c) => c.waitExit()));
    cases.forEach(([label, , re], i) => {
      const cli = clis[i]!;
      const err = cli.stderr.join('\n');
      expect(cli.exit, label).toEqual({ code: 2, signal: null });
      expect(err, label).toMatch(re);
      expect(err, label).toMatch(/^Usage: elect-run-command/m);
      expect(err, label).not.toContain('hunter2');
      expect(cli.stdout, label).toEqual([]);
    });
  });

  it('--help prints the options on stdout and exits 0', async () => {
    const cli = ws.start('help', ['--help']);
    expect(await cli.waitExit()).toEqual({ code: 0, signal: null });
    const out = cli.stdout.join('\n');
    for (const flag of ['--name', '--participate', '--force-election', '--address', '--run']) {
      expect(out).toContain(flag);
    }
  });

  it('on an empty store each participant says once, without --verbose, that it waits out the missing lease', async () => {
    const a = ws.start('A', participant(A, 'a'));
    const b = ws.start('B', participant(B, 'b'));
    await a.line('stderr', /no lease is on record: waiting \d+ ms .*docs\/election-protocol\.md/);
    await b.line('stderr', /no lease is on record: waiting \d+ ms .*docs\/election-protocol\.md/);
    await waitFor(() => ws.read('a.master') !== '' || ws.read('b.master') !== '', 'a master', {
      timeoutMs: WAIT_MS,
    });
    for (const p of [a, b]) {
      expect(p.stderr.filter((l) => l.includes('no lease is on record'))).toHaveLength(1);
    }
  });

  it('resolves a cn= cluster name through DOOZER_BOOT_URI', async () => {
    const a = ws.start('A', participant(A, 'a'));
    const observer = ws.start('observer', ['--observe'], {
      DOOZER_URI: 'doozer:?cn=local',
      DOOZER_BOOT_URI: server.uri,
    });
    await observer.line('stdout', /^master 127\.0\.0\.1:1001 term \d+$/);
    await observer.line('stderr', /following election "test" as \[::1\]:\d+ on doozer:\?cn=local/);
    a.signal('SIGTERM');
    expect(await a.waitExit()).toEqual({ code: 0, signal: null });
  });

  it('--run: losing mastership (server unresponsive past the deadline) kills the whole process group; --error-cmd gets the error', async () => {
    // sh and a background sleep: two processes in the child's group.
    const script = 'sleep 600 & echo $! > "$0.grand.pid"; echo $$ > "$0"; wait';
    const a = ws.start('A', [
      ...participant(A, 'a'),
      // The error text is appended to the command as its last argument.
      '--error-cmd',
      `printf '%s\\n' >> ${ws.path('errors')}`,
      ...run('a', script),
    ]);
    const leader = await ws.pid('a.pid', a);
    const grand = await ws.pid('a.pid.grand.pid', a);
    await a.line('stderr', /became master \(term (\d+)\)/);

    server.pause();
    await a.until(
      () => !isAlive(leader) && !isAlive(grand),
      'the child and its background process to die',
    );
    await a.until(() => ws.read('errors').includes('stepped down from master term'), 'error-cmd');
    expect(ws.lines('errors')).toContainEqual(
      expect.stringMatching(/^stepped down from master term \d+: no renewal completed/),
    );
    expect(a.exit).toBeUndefined(); // losing mastership is not fatal

    // Once the server answers again, A is elected again and starts a new child.
    server.resume();
    await a.until(() => {
      const pid = Number(ws.read('a.pid').trim());
      return pid > 0 && pid !== leader && isAlive(pid);
    }, 'a new child after re-election');
    await a.until(() => ws.lines('a.master').length === 2, 'the second master hook');
    expect(ws.lines('a.master')).toEqual([A, A]);
  });

  it('a fatal election error (access refused) runs --error-cmd and exits 1; the secret is never printed', async () => {
    const secured = await DoozerServer.start({
      host: '127.0.0.1',
      port: 0,
      heartbeatMs: 0,
      rwSecret: 'the-rw-secret',
    });
    try {
      const errorCmd = (file: string): string[] => [
        '--error-cmd',
        `printf '%s\\n' >> ${ws.path(file)}`,
      ];
      // Without a secret the session can read but not write: the election
      // stops when this participant first writes.
      const readOnly = ws.start(
        'read-only',
        ['--participate', ...TIMING_FLAGS, ...errorCmd('ro.errors')],
        { DOOZER_URI: secured.uri },
      );
      // A wrong secret is refused at connection time.
      const wrong = ws.start('wrong secret', [...TIMING_FLAGS, ...errorCmd('wrong.errors')], {
        DOOZER_URI: `${secured.uri}&sk=not-the-secret`,
      });
      expect(await readOnly.waitExit()).toEqual({ code: 1, signal: null });
      expect(await wrong.waitExit()).toEqual({ code: 1, signal: null });
      expect(ws.lines('ro.errors').at(-1)).toMatch(/^election test stopped: .*permission denied/);
      expect(ws.lines('wrong.errors')).toEqual([
        expect.stringMatching(
          /^cannot connect to doozer:\?ca=127\.0\.0\.1:\d+&sk=\*\*\*: access refused/,
        ),
      ]);
      for (const cli of [readOnly, wrong]) {
        const all = cli.transcript() + ws.read('wrong.errors');
        expect(all).not.toContain('not-the-secret');
      }
      expect(wrong.stderr.join('\n')).toContain('sk=***');
    } finally {
      await secured.close();
    }
  });
});

/**
 * End-to-end tests of `elect-run-command`: the compiled CLI in child
 * processes against the embedded Doozer server. Every wait is on an event
 * (an output line, a file's content, a process's exit or death).
 */
import { writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DoozerServer } from '../../lib/testing/index.js';
import { waitFor } from '../support/wait.js';
import { TIMING_FLAGS, WAIT_MS, Workspace, cleanEnv, isAlive } from './harness.js';

const A = '127.0.0.1:1001';
const B = '127.0.0.1:1002';
/** The kill grace of TIMING: (2000 - 1200) - max(100, 20%). */
const GRACE_MS = 640;

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

/** A child that writes its pid and sleeps (sh execs sleep: one process). */
const SLEEPER = 'echo $$ > "$0"; exec sleep 600';

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

  it('two participants elect one master; the hooks run with MASTER set', async () => {
    const a = ws.start('A', participant(A, 'a'));
    const b = ws.start('B', participant(B, 'b'));
    // The empty store is waited out for leaseMs: each says so once, without --verbose.
    await a.line('stderr', /no lease is on record: waiting \d+ ms .*docs\/election-protocol\.md/);
    // One of them runs its master hook with its own address.
    await waitFor(() => ws.read('a.master') !== '' || ws.read('b.master') !== '', 'a master', {
      timeoutMs: WAIT_MS,
    });
    const [master, slave, m, s] = ws.read('a.master') !== '' ? [a, b, 'a', 'b'] : [b, a, 'b', 'a'];
    expect(a.stderr.filter((l) => l.includes('no lease is on record'))).toHaveLength(1);
    const masterAddress = master === a ? A : B;
    expect(ws.lines(`${m}.master`)).toEqual([masterAddress]);
    // The other runs its slave hook with the master's address, and never its master hook.
    await slave.until(() => ws.read(`${s}.slave`) !== '', 'the slave hook');
    expect(ws.lines(`${s}.slave`)).toEqual([masterAddress]);
    expect(ws.read(`${s}.master`)).toBe('');
    const [, term] = await master.line('stderr', /became master \(term (\d+)\)/);
    await slave.line(
      'stderr',
      new RegExp(`following master ${masterAddress.replace(/\./g, '\\.')} \\(term ${term}\\)`),
    );
    // The slave hook also gets the master's term as FENCING_TOKEN.
    expect(ws.lines(`${s}.slave-token`)).toEqual([term]);

    // A clean stop of the slave exits 0 and leaves the master alone.
    slave.signal('SIGTERM');
    expect(await slave.waitExit()).toEqual({ code: 0, signal: null });
    expect(master.exit).toBeUndefined();
  });

  it('a failing --master-cmd gives up mastership, as the Go tool does: the other participant takes over', async () => {
    const observer = ws.start('observer', ['--observe', ...TIMING_FLAGS]);
    // A's master hook records each run, then fails.
    const a = ws.start('A', [
      '--participate',
      '--address',
      A,
      ...TIMING_FLAGS,
      '--master-cmd',
      `printf '%s\\n' "$MASTER" >> ${ws.path('a.master')}; exit 3`,
      '--error-cmd',
      `printf '%s\\n' >> ${ws.path('a.errors')}`,
    ]);
    const [, term] = await a.line('stderr', /became master \(term (\d+)\)/);
    // B joins once A has won (and failed): it takes over, and stays master.
    const b = ws.start('B', participant(B, 'b'));
    await b.until(() => ws.read('b.master') !== '', "B's master hook");
    expect(ws.lines('b.master')).toEqual([B]);
    const [, bTerm] = await b.line('stderr', /became master \(term (\d+)\)/);
    expect(Number(bTerm)).toBeGreaterThan(Number(term));

    // A ran its hook, reported the failure through --error-cmd, stepped down
    // (deleting the election file: a new election) and follows B.
    expect(ws.lines('a.master')[0]).toBe(A);
    await a.line('stderr', /master-cmd exited with code 3/);
    await a.line('stderr', new RegExp(`steps down from master term ${term}: becomeMaster failed`));
    await a.until(
      () => ws.read('a.errors').includes('--master-cmd exited with code 3'),
      'the error hook',
    );
    await a.line(
      'stderr',
      new RegExp(`following master ${B.replace(/\./g, '\\.')} \\(term ${bTerm}\\)`),
    );
    const bLine = `master ${B} term ${bTerm}`;
    await observer.until(() => observer.stdout.includes(bLine), `"${bLine}"`);
    // B stays master: its term is the last change the observer saw.
    expect(observer.stdout.filter((l) => l.startsWith('master ')).at(-1)).toBe(bLine);
    expect(a.exit).toBeUndefined(); // a failing hook is not fatal
    expect(b.exit).toBeUndefined();
  });

  it('--observe prints every change of master; --force-election starts a new term', async () => {
    const observer = ws.start('observer', ['--observe', ...TIMING_FLAGS]);
    const a = ws.start('A', participant(A, 'a'));
    const first = await observer.line('stdout', /^master 127\.0\.0\.1:1001 term (\d+)$/);
    const term1 = Number(first[1]);
    await a.until(() => ws.lines('a.master').length === 1, 'the master hook');

    // A passive process forcing an election: A steps down and, as the only
    // participant, wins the new term.
    const forcer = ws.start('forcer', ['--force-election', ...TIMING_FLAGS]);
    await forcer.line('stderr', /forced a new election/);
    const second = await observer.line(
      'stdout',
      new RegExp(`^master 127\\.0\\.0\\.1:1001 term (?!${term1}$)(\\d+)$`),
    );
    expect(Number(second[1])).toBeGreaterThan(term1);
    await a.until(() => ws.lines('a.master').length === 2, 'the second master hook');
    expect(ws.lines('a.master')).toEqual([A, A]);

    // One line per change, in order; the master's resignation shows as "no master".
    const changes = observer.stdout.filter((l) => l.startsWith('master '));
    expect(changes).toEqual([`master ${A} term ${term1}`, `master ${A} term ${second[1]}`]);
    a.signal('SIGTERM');
    expect(await a.waitExit()).toEqual({ code: 0, signal: null });
    await observer.until(() => observer.stdout.at(-1) === 'no master', '"no master" after A left');

    observer.signal('SIGINT');
    expect(await observer.waitExit()).toEqual({ code: 0, signal: null });
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

  it('--run: the child runs only on the master; SIGTERM stops it, and the other takes over only after', async () => {
    const a = ws.start('A', [...participant(A, 'a'), ...run('a', SLEEPER)]);
    const aPid = await ws.pid('a.pid', a);
    expect(isAlive(aPid)).toBe(true);
    await a.line('stderr', /became master/);
    const b = ws.start('B', [...participant(B, 'b'), ...run('b', SLEEPER)]);
    await b.until(() => ws.read('b.slave') !== '', 'B to follow A');
    expect(ws.read('b.pid')).toBe('');

    // The signal goes to A's child; A exits with the child's status (killed
    // by SIGTERM: 143) and hands over to B.
    a.signal('SIGTERM');
    expect(await a.waitExit()).toEqual({ code: 143, signal: null });
    const bPid = await ws.pid('b.pid', b);
    // B's child started after A's had died: A released the lease only then.
    expect(isAlive(aPid)).toBe(false);
    expect(isAlive(bPid)).toBe(true);
    await b.until(() => ws.read('b.master') !== '', "B's master hook");
    expect(ws.lines('b.master')).toEqual([B]);

    // SIGINT is forwarded too: the child dies of it, B exits 128 + 2.
    b.signal('SIGINT');
    expect(await b.waitExit()).toEqual({ code: 130, signal: null });
    expect(isAlive(bPid)).toBe(false);
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

  it('--run: a child that ignores SIGTERM gets SIGKILL after the grace period', async () => {
    const a = ws.start('A', [
      ...participant(A, 'a'),
      ...run('a', 'trap "" TERM; echo $$ > "$0"; exec sleep 600'),
    ]);
    const pid = await ws.pid('a.pid', a);
    await a.line('stderr', /started child/);
    const t0 = Date.now();
    a.signal('SIGTERM');
    expect(await a.waitExit()).toEqual({ code: 137, signal: null }); // 128 + SIGKILL
    // Not before the grace period (less a little for timer granularity).
    expect(Date.now() - t0).toBeGreaterThanOrEqual(GRACE_MS - 20);
    expect(isAlive(pid)).toBe(false);
    expect(a.stderr.join('\n')).toMatch(new RegExp(`SIGKILL in ${GRACE_MS} ms`));
    expect(a.stderr.join('\n')).toMatch(/sending SIGKILL/);
  });

  it('--run: SIGHUP (terminal gone) stops the child with SIGTERM, so it never outlives the CLI', async () => {
    const a = ws.start('A', [...participant(A, 'a'), ...run('a', SLEEPER)]);
    const pid = await ws.pid('a.pid', a);
    await a.line('stderr', /started child/);
    a.signal('SIGHUP');
    expect(await a.waitExit()).toEqual({ code: 143, signal: null });
    expect(isAlive(pid)).toBe(false);
  });

  it('--run: when the child exits by itself, the CLI resigns and exits with its status; another takes over', async () => {
    const exitOnStop = 'echo $$ > "$0"; while [ ! -e "$0.stop" ]; do sleep 0.05; done; exit 7';
    const a = ws.start('A', [...participant(A, 'a'), ...run('a', exitOnStop)]);
    await ws.pid('a.pid', a);
    const b = ws.start('B', [...participant(B, 'b'), ...run('b', SLEEPER)]);
    await b.until(() => ws.read('b.slave') !== '', 'B to follow A');

    writeFileSync(ws.path('a.pid.stop'), '');
    expect(await a.waitExit()).toEqual({ code: 7, signal: null });
    expect(a.stderr.join('\n')).toMatch(/ended by itself \(status 7\)/);
    const bPid = await ws.pid('b.pid', b);
    expect(isAlive(bPid)).toBe(true);
    await b.line('stderr', /became master/);
  });

  it('a command that cannot be started counts as a child exiting with 127', async () => {
    const a = ws.start('A', [...participant(A, 'a'), '--run', '--', ws.path('no-such-program')]);
    expect(await a.waitExit()).toEqual({ code: 127, signal: null });
    expect(a.stderr.join('\n')).toMatch(/cannot start child/);
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

/**
 * The doozer-dev-server CLI end to end, as a child process. It runs the
 * compiled dist/lib/server/cli.js (exactly what the `bin` entry runs): the
 * suite's global setup (test/support/global-setup.ts) compiles dist/ before
 * any test, so it always matches the sources under test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Verb } from '../../lib/wire/index.js';
import { connectRaw, ipv6Loopback, startServer, until, within } from './helpers.js';

const CLI = fileURLToPath(new URL('../../dist/lib/server/cli.js', import.meta.url));
const LINE = /^doozer-dev-server listening on (\S+):(\d+) uri=(doozer:\?ca=\S+)$/;

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(args: string[], env: Record<string, string> = {}): Run {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\``);
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, DOOZER_RWSECRET: '', DOOZER_ROSECRET: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exit;
  });
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Resolves with the listening line's parts once it is printed. */
function listening(r: Run): Promise<{ host: string; port: number; uri: string }> {
  return within(
    new Promise((resolve, reject) => {
      const check = (): void => {
        const line = r.stdout().split('\n')[0]!;
        const m = LINE.exec(line);
        if (m && r.stdout().includes('\n'))
          resolve({ host: m[1]!, port: Number(m[2]), uri: m[3]! });
      };
      r.child.stdout!.on('data', check);
      void r.exit.then((e) => reject(new Error(`exited ${JSON.stringify(e)}: ${r.stderr()}`)));
      check();
    }),
    30_000,
    'the listening line',
  );
}

describe('doozer-dev-server', () => {
  it('prints one listening line with the uri, serves, and exits 0 on SIGTERM', async () => {
    const r = run([
      '--listen',
      '127.0.0.1:0',
      '--heartbeat-ms',
      '0',
      '--cluster-name',
      'dev',
      '--history',
      '5',
    ]);
    const { host, port, uri } = await listening(r);
    expect(host).toBe('127.0.0.1');
    expect(port).toBeGreaterThan(0);
    expect(uri).toBe(`doozer:?ca=127.0.0.1:${port}`);
    const c = await connectRaw({ host, port });
    expect((await c.call({ verb: Verb.REV })).rev).toBe(58);
    expect((await c.call({ verb: Verb.GET, path: '/ctl/name' })).value).toBe('dev');
    expect((await c.call({ verb: Verb.WAIT, path: '/**', rev: 53 })).err).toBe('TOO_LATE');
    r.child.kill('SIGTERM');
    expect(await within(r.exit, 30_000, 'exit')).toEqual({ code: 0, signal: null });
    expect(r.stdout().trimEnd().split('\n')).toHaveLength(1);
  });

  it('exits 0 on SIGINT', async () => {
    const r = run(['--listen', '127.0.0.1:0']);
    await listening(r);
    r.child.kill('SIGINT');
    expect(await within(r.exit, 30_000, 'exit')).toEqual({ code: 0, signal: null });
  });

  it('reads DOOZER_RWSECRET and DOOZER_ROSECRET like doozerd', async () => {
    const r = run(['--listen', '127.0.0.1:0'], { DOOZER_RWSECRET: 'rw', DOOZER_ROSECRET: 'ro' });
    const c = await connectRaw(await listening(r));
    expect(await c.call({ tag: 1, verb: Verb.GET, path: '/ctl/name' })).toEqual({
      tag: 1,
      err: 'OTHER',
      detail: 'permission denied',
    });
    await c.call({ verb: Verb.ACCESS, value: 'ro' });
    expect((await c.call({ verb: Verb.GET, path: '/ctl/name' })).value).toBe('local');
    expect(r.stdout() + r.stderr()).not.toMatch(/\brw\b|\bro\b/);
  });

  it('listens on IPv6 with a bracketed address', async (ctx) => {
    if (!(await ipv6Loopback())) ctx.skip();
    const r = run(['--listen', '[::1]:0']);
    const out = await within(
      new Promise<string>((resolve) => {
        r.child.stdout!.on('data', () => r.stdout().includes('\n') && resolve(r.stdout()));
      }),
      30_000,
      'the listening line',
    );
    expect(out).toMatch(
      /^doozer-dev-server listening on \[::1\]:\d+ uri=doozer:\?ca=\[::1\]:\d+\n$/,
    );
  });

  it('--advertise-host names the address clients dial; a wildcard bind without it warns', async () => {
    const named = run(['--listen', '0.0.0.0:0', '--advertise-host', '127.0.0.1', '--node-id', 'N']);
    const { host, port, uri } = await listening(named);
    expect([host, uri]).toEqual(['127.0.0.1', `doozer:?ca=127.0.0.1:${port}`]);
    const c = await connectRaw({ host, port });
    expect((await c.call({ verb: Verb.GET, path: '/ctl/ns/local/N' })).value).toBe(
      `127.0.0.1:${port}`,
    );
    expect(named.stderr()).toBe('');

    const wild = run(['--listen', '0.0.0.0:0']);
    expect((await listening(wild)).host).toBe('0.0.0.0');
    await until(() => wild.stderr().includes('\n'), 'the warning');
    expect(wild.stderr()).toMatch(
      /^doozer-dev-server: listening on the wildcard address 0\.0\.0\.0, .*--advertise-host/,
    );
  });

  it.each([
    [['--bogus']],
    [['--listen', 'nope']],
    [['--listen', '127.0.0.1:99999']],
    [['--history', '-1']],
    [['--history', 'many']],
    [['--heartbeat-ms', '1.5']],
    [['--cluster-name', 'a/b']],
    [['--advertise-host', 'a b']],
    [['extra-argument']],
  ])('exits 2 with the usage on bad flags: %j', async (args) => {
    const r = run(args);
    expect((await within(r.exit, 30_000, 'exit')).code).toBe(2);
    expect(r.stderr()).toMatch(/Usage: doozer-dev-server/);
    expect(r.stdout()).toBe('');
  });

  it('--help exits 0', async () => {
    const r = run(['--help']);
    expect((await within(r.exit, 30_000, 'exit')).code).toBe(0);
    expect(r.stdout()).toMatch(/--listen <host:port>/);
  });

  it('exits 1 when the address is taken', async () => {
    const taken = await startServer();
    const r = run(['--listen', `127.0.0.1:${taken.port}`]);
    expect((await within(r.exit, 30_000, 'exit')).code).toBe(1);
    expect(r.stderr()).toMatch(/cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  });
});

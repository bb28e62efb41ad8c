/**
 * The doozer-dev-server CLI end to end, as a child process. It runs the
 * compiled dist/cjs/bin/doozer-dev-server.js (exactly what the `bin` entry runs): the
 * suite's global setup (test/support/global-setup.ts) compiles dist/ before
 * any test, so it always matches the sources under test.
 */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Verb } from '../../lib/wire/index.js';
import { listening, run } from './dev-server-process.js';
import { connectRaw, ipv6Loopback, startServer, until, within } from './helpers.js';

/**
 * Module source that makes `net.Server.prototype[method]` hang, saying so on
 * stderr (a timer keeps the process alive meanwhile, as a pending socket would).
 */
function hold(method: 'listen' | 'close'): string {
  return `import net from 'node:net';
net.Server.prototype.${method} = function () {
  process.stderr.write('held: ${method}\\n');
  setInterval(() => {}, 1 << 30);
  return this;
};`;
}

/** True when nothing listens on 127.0.0.1:`port`. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ host: '127.0.0.1', port }, () => probe.close(() => resolve(true)));
  });
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

  it('exits 0 on a signal that comes while it is starting', async () => {
    const r = run(['--listen', '127.0.0.1:0'], {}, hold('listen'));
    await until(() => r.stderr().includes('held: listen\n'), 'the CLI to start listening');
    r.child.kill('SIGTERM');
    expect(await within(r.exit, 30_000, 'exit')).toEqual({ code: 0, signal: null });
    expect(r.stdout()).toBe('');
  });

  it('exits at once, 128 + the signal number, on a second signal while closing', async () => {
    const r = run(['--listen', '127.0.0.1:0'], {}, hold('close'));
    await listening(r);
    r.child.kill('SIGTERM');
    await until(() => r.stderr().includes('held: close\n'), 'the CLI to start closing');
    r.child.kill('SIGINT');
    expect(await within(r.exit, 30_000, 'exit')).toEqual({ code: 130, signal: null });
  });

  it('listens on 127.0.0.1:8046 without --listen (skipped when that port is taken)', async (ctx) => {
    if (!(await portFree(8046))) ctx.skip('127.0.0.1:8046 is taken on this machine');
    const r = run(['--heartbeat-ms', '0']);
    const where = await listening(r).catch(async (e: unknown) => {
      await r.exit;
      if (r.stderr().includes('EADDRINUSE')) ctx.skip('127.0.0.1:8046 was taken meanwhile');
      throw e;
    });
    expect(where).toEqual({ host: '127.0.0.1', port: 8046, uri: 'doozer:?ca=127.0.0.1:8046' });
    const c = await connectRaw(where);
    expect((await c.call({ verb: Verb.REV })).rev).toBe(58);
    r.child.kill('SIGTERM');
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
    [['--max-path-bytes', '0']],
    [['--max-path-depth', '3']],
    [['--max-total-write-buffer-bytes', '0']],
    [['--max-write-buffer-bytes', '0']],
    [['--max-waiting', 'none']],
    [['extra-argument']],
  ])('exits 2 with the usage on bad flags: %j', async (args) => {
    const r = run(args);
    expect((await within(r.exit, 30_000, 'exit')).code).toBe(2);
    expect(r.stderr()).toMatch(/Usage: doozer-dev-server/);
    expect(r.stdout()).toBe('');
  });

  it('--max-path-bytes and --max-path-depth set the path limits', async () => {
    const r = run(['--listen', '127.0.0.1:0', '--max-path-bytes', '100', '--max-path-depth', '5']);
    const c = await connectRaw(await listening(r));
    expect(await c.call({ tag: 1, verb: Verb.GET, path: `/${'p'.repeat(100)}` })).toEqual({
      tag: 1,
      err: 'BAD_PATH',
      detail: 'path of 101 bytes exceeds maxPathBytes (100)',
    });
    expect(await c.call({ tag: 2, verb: Verb.GET, path: '/1/2/3/4/5/6' })).toEqual({
      tag: 2,
      err: 'BAD_PATH',
      detail: 'path of 6 components exceeds maxPathDepth (5)',
    });
    expect((await c.call({ verb: Verb.GET, path: '/ctl/name' })).value).toBe('local');
  });

  it('--max-total-write-buffer-bytes sets the server-wide budget of unread answers', async () => {
    // One byte: the first answer written is over it, and its connection is closed.
    const r = run(['--listen', '127.0.0.1:0', '--max-total-write-buffer-bytes', '1']);
    const c = await connectRaw(await listening(r));
    c.send({ verb: Verb.REV });
    await within(c.closed, 30_000, 'the connection to be closed');
    await until(() => r.stderr().includes('\n'), 'the warning');
    expect(r.stderr()).toMatch(
      /^doozer-dev-server: closing connection from 127\.0\.0\.1:\d+: the server holds more than 1 bytes of unread answers/,
    );
  });

  it('--max-write-buffer-bytes and --max-waiting close the connection past them', async () => {
    const r = run([
      '--listen',
      '127.0.0.1:0',
      '--heartbeat-ms',
      '0',
      '--max-waiting',
      '2',
      '--max-write-buffer-bytes',
      '1000',
    ]);
    const address = await listening(r);
    const parker = await connectRaw(address);
    parker.send({ verb: Verb.WAIT, path: '/a', rev: 59 });
    parker.send({ verb: Verb.WAIT, path: '/b', rev: 59 });
    await parker.call({ verb: Verb.REV });
    parker.send({ verb: Verb.WAIT, path: '/c', rev: 59 });
    await within(parker.closed, 30_000, 'the third WAIT to close its connection');
    await until(() => r.stderr().includes('\n'), 'the first warning');
    expect(r.stderr()).toMatch(/: the server has more than 2 requests waiting\n/);
    // An answer of more than 1000 bytes: over one connection's limit.
    const writer = await connectRaw(address);
    await writer.call({ verb: Verb.SET, path: '/big', rev: 0, value: 'x'.repeat(2000) });
    const reader = await connectRaw(address);
    reader.send({ verb: Verb.GET, path: '/big' });
    await within(reader.closed, 30_000, 'the answer past 1000 bytes to close its connection');
    expect(writer.isOpen).toBe(true);
    await until(() => r.stderr().split('\n').length > 2, 'the second warning');
    expect(r.stderr()).toMatch(/: more than 1000 bytes of answers not read\n/);
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

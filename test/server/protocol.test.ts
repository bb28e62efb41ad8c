/**
 * The embedded server's answers, byte for byte, through a raw socket: the
 * exact fields of every response (absolute revs are fine here, the server is
 * ours). The client-level, server-agnostic version is test/conformance/.
 */
import { describe, expect, it } from 'vitest';
import { EMBEDDED_SERVER_VERSION } from '../../lib/testing/index.js';
import { Verb } from '../../lib/wire/index.js';
import { connectRaw, expectBlocked, ipv6Loopback, startServer, until, within } from './helpers.js';

const { GET, SET, DEL, REV, WAIT, NOP, WALK, GETDIR, STAT, SELF, ACCESS } = Verb;

async function setup(options = {}) {
  const server = await startServer(options);
  const c = await connectRaw(server);
  return { server, c };
}

describe('a fresh node', () => {
  it('starts at rev 58 with the /ctl files doozerd writes', async () => {
    const { server, c } = await setup({ nodeId: 'NODE1', clusterName: 'dev' });
    expect(server.rev).toBe(58);
    expect(await c.call({ tag: 1, verb: REV })).toEqual({ tag: 1, rev: 58 });
    const addr = `127.0.0.1:${server.port}`;
    const get = (path: string) => c.call({ verb: GET, path }).then((r) => [r.value, r.rev]);
    expect(await get('/ctl/name')).toEqual(['dev', 1]);
    expect(await get('/ctl/node/NODE1/addr')).toEqual([addr, 2]);
    expect((await get('/ctl/node/NODE1/hostname'))[1]).toBe(3);
    expect(await get('/ctl/node/NODE1/version')).toEqual([EMBEDDED_SERVER_VERSION, 4]);
    expect(await get('/ctl/cal/0')).toEqual(['NODE1', 5]);
    expect(await get('/ctl/ns/dev/NODE1')).toEqual([addr, 6]);
    expect(await get('/ctl/node/NODE1/writable')).toEqual(['true', 57]);
    expect(await get('/ctl/node/NODE1/applied')).toEqual(['57', 58]);
    expect(await c.call({ tag: 2, verb: SELF })).toEqual({ tag: 2, value: 'NODE1' });
    expect(server.uri).toBe(`doozer:?ca=${addr}`);
  });

  it('has revs 7 to 56 as NOPs (path "/", flags 0), visible to a WAIT on /**', async () => {
    const { c } = await setup();
    expect(await c.call({ tag: 1, verb: WAIT, path: '/**', rev: 7 })).toEqual({
      tag: 1,
      path: '/',
      rev: 7,
      value: '',
      flags: 0,
    });
    const r = await c.call({ verb: WAIT, path: '/ctl/**', rev: 7 });
    expect([r.path, r.rev]).toEqual([expect.stringMatching(/\/writable$/), 57]);
  });

  it('generates a doozerd-like node id by default', async () => {
    const { server, c } = await setup();
    expect(server.nodeId).toMatch(/^[A-Z2-7]{16}$/);
    expect((await c.call({ verb: SELF })).value).toBe(server.nodeId);
  });

  it('brackets an IPv6 host in the uri and the /ctl/ns address', async (ctx) => {
    if (!(await ipv6Loopback())) ctx.skip();
    const server = await startServer({ host: '::1' });
    expect(server.uri).toBe(`doozer:?ca=[::1]:${server.port}`);
    const c = await connectRaw(server);
    const ns = await c.call({ verb: GET, path: `/ctl/ns/local/${server.nodeId}` });
    expect(ns.value).toBe(`[::1]:${server.port}`);
  });

  it('advertises advertiseHost (with the bound port) in the uri, /ctl/node and /ctl/ns', async () => {
    const warnings: string[] = [];
    const server = await startServer({
      nodeId: 'ADV',
      advertiseHost: 'doozer.example',
      logger: { warn: (m) => warnings.push(m) },
    });
    expect(server.host).toBe('127.0.0.1');
    expect(server.address).toBe(`doozer.example:${server.port}`);
    expect(server.uri).toBe(`doozer:?ca=doozer.example:${server.port}`);
    const c = await connectRaw(server);
    for (const path of ['/ctl/node/ADV/addr', '/ctl/ns/local/ADV']) {
      expect((await c.call({ verb: GET, path })).value).toBe(`doozer.example:${server.port}`);
    }
    expect(warnings).toEqual([]);
  });

  it('warns once when bound to a wildcard address without advertiseHost', async () => {
    const lines: string[] = [];
    const logger = {
      info: (m: string) => lines.push(`info ${m}`),
      warn: (m: string) => lines.push(`warn ${m}`),
    };
    const server = await startServer({ host: '0.0.0.0', logger });
    expect(server.address).toBe(`0.0.0.0:${server.port}`);
    expect(lines).toEqual([
      `info doozer server listening on 0.0.0.0:${server.port} uri=doozer:?ca=0.0.0.0:${server.port}`,
      expect.stringMatching(/^warn listening on the wildcard address 0\.0\.0\.0, .*advertiseHost/),
    ]);
    lines.length = 0;
    const named = await startServer({ host: '0.0.0.0', advertiseHost: '127.0.0.1', logger });
    expect(named.uri).toBe(`doozer:?ca=127.0.0.1:${named.port}`);
    expect(lines).toEqual([expect.stringMatching(/^info /)]);
    const c = await connectRaw({ host: '127.0.0.1', port: named.port });
    expect((await c.call({ verb: REV })).rev).toBe(58);
  });
});

describe('REV, NOP, SELF', () => {
  it('NOP consumes a rev and answers empty', async () => {
    const { c } = await setup();
    expect(await c.call({ tag: 3, verb: NOP })).toEqual({ tag: 3 });
    expect((await c.call({ verb: REV })).rev).toBe(59);
  });

  it('echoes no tag when the request had none', async () => {
    const { c } = await setup();
    c.send({ tag: null, verb: REV });
    expect(await c.next()).toEqual({ rev: 58 });
  });
});

describe('SET and DEL', () => {
  it('creates with rev 0 and answers the new file rev (the store rev of the write)', async () => {
    const { c } = await setup();
    expect(await c.call({ tag: 1, verb: SET, path: '/a', rev: 0, value: 'x' })).toEqual({
      tag: 1,
      rev: 59,
    });
    expect(await c.call({ tag: 2, verb: GET, path: '/a' })).toEqual({
      tag: 2,
      rev: 59,
      value: 'x',
    });
  });

  it('applies the rev rule: exact, future and -1 succeed; 0, stale, -2 and other negatives fail', async () => {
    const { c } = await setup();
    await c.call({ verb: SET, path: '/a', rev: 0, value: '1' }); // 59
    const set = (rev: number | bigint) =>
      c.call({ verb: SET, path: '/a', rev, value: String(rev) });
    expect((await set(0)).err).toBe('REV_MISMATCH'); // 60 -> /ctl/err
    expect((await set(59)).rev).toBe(61);
    expect((await set(60)).err).toBe('REV_MISMATCH'); // stale: 62
    expect((await set(1_000_000)).rev).toBe(63); // far future succeeds
    expect((await set(2n ** 62n)).rev).toBe(64);
    expect((await set(-1)).rev).toBe(65);
    expect((await set(-2)).err).toBe('REV_MISMATCH'); // 66
    expect((await set(-7)).err).toBe('REV_MISMATCH'); // 67
    expect((await c.call({ verb: REV })).rev).toBe(67);
    expect((await c.call({ verb: SET, path: '/new', rev: -2, value: '' })).err).toBe(
      'REV_MISMATCH',
    );
    expect((await c.call({ verb: SET, path: '/new', rev: -1, value: 'v' })).rev).toBe(69);
  });

  it('records every failed write in /ctl/err, consuming a rev', async () => {
    const { c } = await setup();
    await c.call({ verb: SET, path: '/d/f', rev: 0, value: '' }); // 59
    expect(await c.call({ tag: 9, verb: SET, path: '/d', rev: -1, value: '' })).toEqual({
      tag: 9,
      err: 'ISDIR',
    });
    expect(await c.call({ tag: 2, verb: GET, path: '/ctl/err' })).toEqual({
      tag: 2,
      rev: 60,
      value: 'is a directory',
    });
    expect((await c.call({ verb: SET, path: '/d/f/g', rev: 0, value: '' })).err).toBe('NOTDIR');
    expect((await c.call({ verb: GET, path: '/ctl/err' })).value).toBe('not a directory');
    expect((await c.call({ verb: DEL, path: '/d/f', rev: 1 })).err).toBe('REV_MISMATCH');
    expect(await c.call({ tag: 6, verb: WAIT, path: '/ctl/err', rev: 62 })).toEqual({
      tag: 6,
      path: '/ctl/err',
      rev: 62,
      value: 'rev mismatch',
      flags: 4,
    });
    expect((await c.call({ verb: DEL, path: '/d', rev: -1 })).err).toBe('ISDIR');
    expect((await c.call({ verb: SET, path: '/', rev: -1, value: '' })).err).toBe('ISDIR');
    expect((await c.call({ verb: DEL, path: '/', rev: 0 })).err).toBe('ISDIR');
    expect((await c.call({ verb: REV })).rev).toBe(65);
  });

  it('still records a failure as a set of /ctl/err when a client made it a directory', async () => {
    const { server, c } = await setup();
    await c.call({ verb: SET, path: '/ctl/err/x', rev: 0, value: 'mine' }); // 59
    await c.call({ verb: SET, path: '/f', rev: 0, value: '' }); // 60
    expect((await c.call({ verb: SET, path: '/f', rev: 0, value: '' })).err).toBe('REV_MISMATCH');
    expect(await c.call({ tag: 1, verb: WAIT, path: '/ctl/err', rev: 61 })).toEqual({
      tag: 1,
      path: '/ctl/err',
      rev: 61,
      value: 'rev mismatch',
      flags: 4,
    });
    // The tree is left as it was (the reference's node would be a file and a directory at once).
    expect(await c.call({ tag: 2, verb: STAT, path: '/ctl/err' })).toEqual({
      tag: 2,
      rev: -2,
      len: 1,
    });
    expect((await c.call({ verb: GET, path: '/ctl/err/x' })).value).toBe('mine');
    expect((await c.call({ verb: GET, path: '/ctl/err/x', rev: 60 })).value).toBe('mine');
    expect((await c.call({ verb: GET, path: '/ctl/err', rev: 60 })).err).toBe('ISDIR');
    expect(server.rev).toBe(61);
  });

  it('still records a failure as a set of /ctl/err when a client made /ctl a file', async () => {
    const { server, c } = await setup();
    const files: string[] = [];
    for (let offset = 0; ; offset++) {
      const r = await c.call({ verb: WALK, path: '/ctl/**', offset });
      if (r.err) break;
      files.push(r.path!);
    }
    for (const path of files) await c.call({ verb: DEL, path, rev: -1 });
    const ctl = (await c.call({ verb: SET, path: '/ctl', rev: 0, value: 'a file' })).rev!;
    expect((await c.call({ verb: SET, path: '/ctl', rev: 0, value: '' })).err).toBe('REV_MISMATCH');
    expect(await c.call({ tag: 1, verb: WAIT, path: '/ctl/**', rev: ctl + 1 })).toEqual({
      tag: 1,
      path: '/ctl/err',
      rev: ctl + 1,
      value: 'rev mismatch',
      flags: 4,
    });
    expect(await c.call({ tag: 2, verb: GET, path: '/ctl' })).toEqual({
      tag: 2,
      rev: ctl,
      value: 'a file',
    });
    expect(server.rev).toBe(ctl + 1);
  });

  it('answers BAD_PATH without consuming a rev', async () => {
    const { c } = await setup();
    for (const path of ['', 'a', '/a/', '/a//b', '/a b', '/a=b', '/a_b', '/ä']) {
      expect((await c.call({ verb: SET, path, rev: -1, value: 'x' })).err, path).toBe('BAD_PATH');
      expect((await c.call({ verb: DEL, path, rev: -1 })).err, path).toBe('BAD_PATH');
    }
    expect((await c.call({ verb: REV })).rev).toBe(58);
  });

  it('keeps arbitrary bytes', async () => {
    const { c } = await setup();
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    await c.call({ verb: SET, path: '/bin', rev: 0, value: bytes });
    const got = await c.callForResponse({ verb: GET, path: '/bin' });
    expect(Buffer.from(got.value).equals(Buffer.from(bytes))).toBe(true);
  });

  it('keeps large values (stored apart from small ones) byte for byte', async () => {
    const { c } = await setup();
    for (const size of [4096, 4097, 300_000]) {
      const bytes = Uint8Array.from({ length: size }, (_, i) => (i * 31 + size) % 256);
      await c.call({ verb: SET, path: `/big${size}`, rev: 0, value: bytes });
      const got = await c.callForResponse({ verb: GET, path: `/big${size}` });
      expect(Buffer.from(got.value).equals(Buffer.from(bytes)), `${size} bytes`).toBe(true);
      const stat = await c.call({ verb: STAT, path: `/big${size}` });
      expect(stat.len).toBe(size);
    }
  });

  it('DEL: answers empty (no rev), follows the rev rule, and succeeds on a missing file', async () => {
    const { c } = await setup();
    await c.call({ verb: SET, path: '/a', rev: 0, value: 'x' }); // 59
    expect((await c.call({ verb: DEL, path: '/a', rev: 0 })).err).toBe('REV_MISMATCH'); // 60
    expect((await c.call({ verb: DEL, path: '/a', rev: 58 })).err).toBe('REV_MISMATCH'); // 61
    expect(await c.call({ tag: 7, verb: DEL, path: '/a', rev: 59 })).toEqual({ tag: 7 }); // 62
    expect(await c.call({ tag: 8, verb: DEL, path: '/a', rev: 0 })).toEqual({ tag: 8 }); // 63
    expect(await c.call({ tag: 9, verb: DEL, path: '/nope/x', rev: -1 })).toEqual({ tag: 9 }); // 64
    await c.call({ verb: SET, path: '/b', rev: 0, value: 'x' }); // 65
    expect(await c.call({ tag: 10, verb: DEL, path: '/b', rev: 1e9 })).toEqual({ tag: 10 }); // 66
    expect((await c.call({ verb: REV })).rev).toBe(66);
  });

  it('DEL of a missing file is still an event (flags 8) a WAIT sees', async () => {
    const { c } = await setup();
    const w = c.call({ tag: 2, verb: WAIT, path: '/ghost', rev: 59 });
    await c.call({ verb: DEL, path: '/ghost', rev: 0 });
    expect(await w).toEqual({ tag: 2, path: '/ghost', rev: 59, value: '', flags: 8 });
  });

  it('removes directories with their last file', async () => {
    const { c } = await setup();
    const s = await c.call({ verb: SET, path: '/x/y/z', rev: 0, value: '' });
    expect(await c.call({ tag: 1, verb: STAT, path: '/x/y' })).toEqual({ tag: 1, rev: -2, len: 1 });
    await c.call({ verb: DEL, path: '/x/y/z', rev: s.rev });
    expect(await c.call({ tag: 2, verb: STAT, path: '/x' })).toEqual({ tag: 2, rev: 0, len: 0 });
    expect((await c.call({ verb: GETDIR, path: '/x', offset: 0 })).err).toBe('NOENT');
    // A path that was a directory can become a file and back.
    expect((await c.call({ verb: SET, path: '/x', rev: 0, value: 'f' })).err).toBeUndefined();
  });
});

describe('GET', () => {
  it('answers the file rev, not the store rev', async () => {
    const { c } = await setup();
    await c.call({ verb: SET, path: '/a', rev: 0, value: 'x' });
    await c.call({ verb: NOP });
    expect((await c.call({ verb: GET, path: '/a' })).rev).toBe(59);
  });

  it('a missing file or a bad path: rev 0 and an empty value, no error', async () => {
    const { c } = await setup();
    for (const path of ['/missing', '/ctl/missing/deeper', '', 'ctl', '/ctl/', '/a b', '//']) {
      expect(await c.call({ tag: 1, verb: GET, path }), path).toEqual({
        tag: 1,
        rev: 0,
        value: '',
      });
    }
  });

  it('a directory: ISDIR', async () => {
    const { c } = await setup();
    expect(await c.call({ tag: 1, verb: GET, path: '/ctl' })).toEqual({ tag: 1, err: 'ISDIR' });
    expect((await c.call({ verb: GET, path: '/' })).err).toBe('ISDIR');
  });

  it('at a past rev: the file as of then (rev 0 before it existed)', async () => {
    const { c } = await setup();
    await c.call({ verb: SET, path: '/a', rev: 0, value: 'one' }); // 59
    await c.call({ verb: SET, path: '/a', rev: 59, value: 'two' }); // 60
    await c.call({ verb: DEL, path: '/a', rev: 60 }); // 61
    await c.call({ verb: SET, path: '/a/b', rev: 0, value: 'dir now' }); // 62
    const at = (rev: number) => c.call({ verb: GET, path: '/a', rev });
    expect(await at(58)).toMatchObject({ rev: 0, value: '' });
    expect(await at(59)).toMatchObject({ rev: 59, value: 'one' });
    expect(await at(60)).toMatchObject({ rev: 60, value: 'two' });
    expect(await at(61)).toMatchObject({ rev: 0, value: '' });
    expect((await at(62)).err).toBe('ISDIR');
    expect(await c.call({ verb: GET, path: '/ctl/name', rev: 0 })).toMatchObject({ rev: 1 });
    expect(await c.call({ verb: GET, path: '/ctl/cal/0', rev: -5 })).toMatchObject({ rev: 0 });
  });

  it('at a future rev: blocks until the store reaches it, then answers as of that rev', async () => {
    const { server, c } = await setup();
    const other = await connectRaw(server);
    const answer = c.call({ tag: 5, verb: GET, path: '/f', rev: 60 });
    await expectBlocked(c, answer);
    await other.call({ verb: SET, path: '/f', rev: 0, value: 'a' }); // 59
    await expectBlocked(c, answer);
    await other.call({ verb: SET, path: '/f', rev: -1, value: 'b' }); // 60
    expect(await answer).toEqual({ tag: 5, rev: 60, value: 'b' });
  });

  it('MISSING_ARG without a path', async () => {
    const { c } = await setup();
    expect(await c.call({ tag: 1, verb: GET })).toEqual({ tag: 1, err: 'MISSING_ARG' });
  });
});

describe('STAT', () => {
  it('file: file rev and length; directory: -2 and entries; missing, bad or no path: 0, 0', async () => {
    const { c } = await setup();
    await c.call({ verb: SET, path: '/s/f', rev: 0, value: 'hello' }); // 59
    await c.call({ verb: SET, path: '/s/g/h', rev: 0, value: '' }); // 60
    const stat = (path?: string, rev?: number) => c.call({ tag: 1, verb: STAT, path, rev });
    expect(await stat('/s/f')).toEqual({ tag: 1, rev: 59, len: 5 });
    expect(await stat('/s')).toEqual({ tag: 1, rev: -2, len: 2 });
    expect(await stat('/nope')).toEqual({ tag: 1, rev: 0, len: 0 });
    expect(await stat('/s/')).toEqual({ tag: 1, rev: 0, len: 0 });
    expect(await stat()).toEqual({ tag: 1, rev: 0, len: 0 });
    expect(await stat('/s', 59)).toEqual({ tag: 1, rev: -2, len: 1 });
    expect(await stat('/s/f', 58)).toEqual({ tag: 1, rev: 0, len: 0 });
  });
});

describe('GETDIR', () => {
  it('one sorted entry per request; RANGE past the end or negative; NOTDIR; NOENT', async () => {
    const { c } = await setup();
    for (const name of ['b', 'a-c', 'a', 'B']) {
      await c.call({ verb: SET, path: `/g/${name}`, rev: 0, value: '' });
    }
    await c.call({ verb: SET, path: '/g/a/deep', rev: -1, value: '' }).then((r) => {
      expect(r.err).toBe('NOTDIR');
    });
    const entry = (offset?: number, path = '/g', rev?: number) =>
      c.call({ tag: 4, verb: GETDIR, path, offset, rev });
    const names = [];
    for (let i = 0; i < 4; i++) names.push((await entry(i)).path);
    expect(names).toEqual(['B', 'a', 'a-c', 'b']);
    expect(await entry(4)).toEqual({ tag: 4, err: 'RANGE' });
    expect(await entry(-1)).toEqual({ tag: 4, err: 'RANGE' });
    expect(await entry(0, '/g/a')).toEqual({ tag: 4, err: 'NOTDIR' });
    expect(await entry(0, '/nope')).toEqual({ tag: 4, err: 'NOENT' });
    expect(await entry(0, 'bad path')).toEqual({ tag: 4, err: 'NOENT' });
    expect(await entry(undefined)).toEqual({ tag: 4, err: 'MISSING_ARG' });
    expect(await c.call({ tag: 4, verb: GETDIR, offset: 0 })).toEqual({
      tag: 4,
      err: 'MISSING_ARG',
    });
    expect(await entry(0, '/')).toEqual({ tag: 4, path: 'ctl' });
    // As of a past rev: only /g/b existed at 59.
    expect(await entry(0, '/g', 59)).toEqual({ tag: 4, path: 'b' });
    expect(await entry(1, '/g', 59)).toEqual({ tag: 4, err: 'RANGE' });
    expect(await entry(0, '/g', 58)).toEqual({ tag: 4, err: 'NOENT' });
  });
});

describe('WALK', () => {
  it('the offset-th file matching the glob in sorted order; directories never match', async () => {
    const { c } = await setup();
    for (const p of ['/w/a/x', '/w/a-b', '/w/b', '/w/a/y/z']) {
      await c.call({ verb: SET, path: p, rev: 0, value: p.toUpperCase() });
    }
    const walk = async (path: string, rev?: number) => {
      const out = [];
      for (let offset = 0; ; offset++) {
        const r = await c.call({ tag: 2, verb: WALK, path, offset, rev });
        if (r.err) {
          expect(r).toEqual({ tag: 2, err: 'RANGE' });
          return out;
        }
        expect(r.flags).toBe(4);
        expect(r.value).toBe(r.path!.toUpperCase());
        out.push(r.path);
      }
    };
    expect(await walk('/w/**')).toEqual(['/w/a/x', '/w/a/y/z', '/w/a-b', '/w/b']);
    expect(await walk('/w/*')).toEqual(['/w/a-b', '/w/b']);
    expect(await walk('/w/a')).toEqual([]);
    expect(await walk('/w/?')).toEqual(['/w/b']);
    expect(await walk('/w/a/*/z')).toEqual(['/w/a/y/z']);
    expect(await walk('/**/z')).toEqual(['/w/a/y/z']);
    expect(await walk('/w/**', 60)).toEqual(['/w/a/x', '/w/a-b']);
    const first = await c.call({ tag: 3, verb: WALK, path: '/w/b', offset: 0 });
    expect(first).toEqual({ tag: 3, path: '/w/b', value: '/W/B', rev: 61, flags: 4 });
    expect(await c.call({ tag: 3, verb: WALK, path: '/w/**', offset: -1 })).toEqual({
      tag: 3,
      err: 'RANGE',
    });
    expect(await c.call({ tag: 3, verb: WALK, path: '/w/**' })).toEqual({
      tag: 3,
      err: 'MISSING_ARG',
    });
    expect(await c.call({ tag: 3, verb: WALK, path: 'w', offset: 0 })).toEqual({
      tag: 3,
      err: 'OTHER',
      detail: 'invalid glob pattern: w',
    });
  });
});

describe('WAIT', () => {
  it('answers from history at once, the first matching change at or after the rev', async () => {
    const { c } = await setup();
    await c.call({ verb: SET, path: '/w/a', rev: 0, value: '1' }); // 59
    await c.call({ verb: SET, path: '/w/b', rev: 0, value: '2' }); // 60
    await c.call({ verb: DEL, path: '/w/a', rev: -1 }); // 61
    const wait = (path: string, rev: number) => c.call({ tag: 1, verb: WAIT, path, rev });
    expect(await wait('/w/*', 59)).toEqual({ tag: 1, path: '/w/a', rev: 59, value: '1', flags: 4 });
    expect(await wait('/w/*', 60)).toEqual({ tag: 1, path: '/w/b', rev: 60, value: '2', flags: 4 });
    expect(await wait('/w/a', 60)).toEqual({ tag: 1, path: '/w/a', rev: 61, value: '', flags: 8 });
    expect((await wait('/ctl/name', 0)).rev).toBe(1); // rev <= 0 reads as 1
    expect((await wait('/ctl/name', -9)).rev).toBe(1);
  });

  it('a future rev blocks and never reports a change below it', async () => {
    const { server, c } = await setup();
    const writer = await connectRaw(server);
    const answer = c.call({ tag: 1, verb: WAIT, path: '/f', rev: 61 });
    await writer.call({ verb: SET, path: '/f', rev: 0, value: 'a' }); // 59
    await writer.call({ verb: SET, path: '/f', rev: -1, value: 'b' }); // 60
    await expectBlocked(c, answer);
    await writer.call({ verb: NOP }); // 61: not a change to /f
    await expectBlocked(c, answer);
    await writer.call({ verb: SET, path: '/f', rev: -1, value: 'c' }); // 62
    expect(await answer).toEqual({ tag: 1, path: '/f', rev: 62, value: 'c', flags: 4 });
  });

  it('follows a path: WAIT from E + 1 after handling the event at E', async () => {
    const { server, c } = await setup();
    const writer = await connectRaw(server);
    let rev = 59;
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      const next = c.call({ verb: WAIT, path: '/follow/**', rev });
      await writer.call({ verb: SET, path: `/follow/${i % 2}`, rev: -1, value: String(i) });
      const ev = await next;
      seen.push(`${ev.path}=${ev.value}`);
      rev = ev.rev! + 1;
    }
    expect(seen).toEqual([
      '/follow/0=0',
      '/follow/1=1',
      '/follow/0=2',
      '/follow/1=3',
      '/follow/0=4',
    ]);
  });

  it('bad glob: OTHER "invalid glob pattern: ..."; missing path or rev: MISSING_ARG', async () => {
    const { c } = await setup();
    for (const glob of ['', 'a', '/a/', '//', '/a b', '/a[b]', '/a+b']) {
      expect(await c.call({ tag: 1, verb: WAIT, path: glob, rev: 1 })).toEqual({
        tag: 1,
        err: 'OTHER',
        detail: `invalid glob pattern: ${glob}`,
      });
    }
    expect(await c.call({ tag: 1, verb: WAIT, path: '/a' })).toEqual({
      tag: 1,
      err: 'MISSING_ARG',
    });
    expect(await c.call({ tag: 1, verb: WAIT, rev: 1 })).toEqual({ tag: 1, err: 'MISSING_ARG' });
  });

  it('TOO_LATE older than history, also for reads pinned to a rev', async () => {
    const { c } = await setup({ history: 10 });
    // rev 58: revs 49..58 answerable.
    expect((await c.call({ verb: WAIT, path: '/**', rev: 48 })).err).toBe('TOO_LATE');
    expect((await c.call({ verb: WAIT, path: '/**', rev: 49 })).rev).toBe(49);
    expect((await c.call({ verb: WAIT, path: '/**', rev: 0 })).err).toBe('TOO_LATE');
    expect((await c.call({ verb: GET, path: '/ctl/name', rev: 48 })).err).toBe('TOO_LATE');
    expect((await c.call({ verb: GET, path: '/ctl/name', rev: 49 })).rev).toBe(1);
    expect((await c.call({ verb: STAT, path: '/ctl', rev: 1 })).err).toBe('TOO_LATE');
    expect((await c.call({ verb: GETDIR, path: '/ctl', rev: 1, offset: 0 })).err).toBe('TOO_LATE');
    expect((await c.call({ verb: WALK, path: '/**', rev: 1, offset: 0 })).err).toBe('TOO_LATE');
    await c.call({ verb: NOP });
    expect((await c.call({ verb: WAIT, path: '/**', rev: 49 })).err).toBe('TOO_LATE');
  });
});

describe('errors common to every verb', () => {
  it('UNKNOWN_VERB for an unknown or absent verb', async () => {
    const { c } = await setup();
    expect(await c.call({ tag: 1 })).toEqual({ tag: 1, err: 'UNKNOWN_VERB' });
    expect(await c.call({ tag: 2, verb: 4 as Verb })).toEqual({ tag: 2, err: 'UNKNOWN_VERB' });
    expect(await c.call({ tag: 3, verb: 42 as Verb })).toEqual({ tag: 3, err: 'UNKNOWN_VERB' });
  });

  it('MISSING_ARG for SET/DEL without path or rev', async () => {
    const { c } = await setup();
    const missing = { tag: 1, err: 'MISSING_ARG' };
    expect(await c.call({ tag: 1, verb: SET, rev: 0, value: 'x' })).toEqual(missing);
    expect(await c.call({ tag: 1, verb: SET, path: '/a', value: 'x' })).toEqual(missing);
    expect(await c.call({ tag: 1, verb: DEL, path: '/a' })).toEqual(missing);
    expect(await c.call({ tag: 1, verb: DEL, rev: 0 })).toEqual(missing);
    // SET without a value writes an empty file.
    expect((await c.call({ verb: SET, path: '/empty', rev: 0 })).rev).toBe(59);
    expect((await c.call({ verb: REV })).rev).toBe(59);
  });

  it('does not check tags, like doozerd: a reused tag is served and answered twice', async () => {
    const { server, c } = await setup();
    c.send({ tag: 7, verb: WAIT, path: '/t', rev: 59 });
    c.send({ tag: 7, verb: WAIT, path: '/t', rev: 60 });
    c.send({ tag: 7, verb: GET, path: '/ctl/name' });
    expect(await within(c.next(), 10_000, 'the GET')).toEqual({ tag: 7, rev: 1, value: 'local' });
    expect(server.waiting).toBe(2);
    await c.call({ tag: 8, verb: SET, path: '/t', rev: 0, value: 'a' }); // 59
    expect(await within(c.next(), 10_000, 'the first WAIT')).toMatchObject({ tag: 7, rev: 59 });
    await c.call({ tag: 8, verb: SET, path: '/t', rev: -1, value: 'b' }); // 60
    expect(await within(c.next(), 10_000, 'the second WAIT')).toMatchObject({ tag: 7, rev: 60 });
    expect(server.waiting).toBe(0);
    // Waits sharing a tag are all freed when their connection closes.
    c.send({ tag: 3, verb: WAIT, path: '/never', rev: 61 });
    c.send({ tag: 3, verb: GET, path: '/never', rev: 1000 });
    await c.call({ tag: 4, verb: REV });
    expect(server.waiting).toBe(2);
    await c.close();
    await until(() => server.waiting === 0, 'the waits to be freed');
  });

  it('checkTags: TAG_IN_USE when a request reuses the tag of one still outstanding', async () => {
    const { server, c } = await setup({ checkTags: true });
    c.send({ tag: 7, verb: WAIT, path: '/t', rev: 100 });
    c.send({ tag: 7, verb: GET, path: '/ctl/name' });
    expect(await within(c.next(), 10_000, 'TAG_IN_USE')).toEqual({ tag: 7, err: 'TAG_IN_USE' });
    const other = await connectRaw(server);
    expect((await other.call({ tag: 7, verb: REV })).rev).toBe(58); // tags are per connection
    for (let i = 0; i < 41; i++) await other.call({ verb: NOP });
    await other.call({ verb: SET, path: '/t', rev: 0, value: '' });
    expect(await within(c.next(), 10_000, 'the WAIT')).toMatchObject({ tag: 7, rev: 100 });
    expect((await c.call({ tag: 7, verb: GET, path: '/t' })).rev).toBe(100); // free again
  });
});

describe('ACCESS', () => {
  const readOk = async (c: Awaited<ReturnType<typeof connectRaw>>) =>
    (await c.call({ verb: GET, path: '/ctl/name' })).err === undefined;
  const writeOk = async (c: Awaited<ReturnType<typeof connectRaw>>) =>
    (await c.call({ verb: SET, path: '/acc', rev: -1, value: '' })).err === undefined;
  const denied = { tag: 1, err: 'OTHER', detail: 'permission denied' };

  it('no secrets: all allowed; a wrong secret is refused and keeps access', async () => {
    const { c } = await setup();
    expect(await c.call({ tag: 1, verb: ACCESS, value: 'wrong' })).toEqual(denied);
    expect([await readOk(c), await writeOk(c)]).toEqual([true, true]);
    expect(await c.call({ tag: 1, verb: ACCESS, value: '' })).toEqual({ tag: 1 });
    expect(await c.call({ tag: 1, verb: ACCESS })).toEqual({ tag: 1 });
  });

  it('only a read-write secret: reads work, writes (and NOP) refused until ACCESS', async () => {
    const { c } = await setup({ rwSecret: 'rw' });
    expect([await readOk(c), await writeOk(c)]).toEqual([true, false]);
    expect(await c.call({ tag: 1, verb: NOP })).toEqual(denied);
    expect(await c.call({ tag: 1, verb: DEL, path: '/x', rev: -1 })).toEqual(denied);
    expect(await c.call({ tag: 1, verb: ACCESS, value: 'nope' })).toEqual(denied);
    expect(await c.call({ tag: 1, verb: ACCESS, value: 'rw' })).toEqual({ tag: 1 });
    expect([await readOk(c), await writeOk(c)]).toEqual([true, true]);
    expect(await c.call({ tag: 1, verb: ACCESS, value: 'nope' })).toEqual(denied);
    expect(await writeOk(c)).toBe(true);
  });

  it('both secrets: nothing but REV and SELF without ACCESS; the read-only secret reads', async () => {
    const { server, c } = await setup({ rwSecret: 'rw', roSecret: 'ro' });
    expect((await c.call({ verb: REV })).rev).toBe(58);
    expect((await c.call({ verb: SELF })).value).toBe(server.nodeId);
    for (const req of [
      { verb: GET, path: '/ctl/name' },
      { verb: SET, path: '/x', rev: -1, value: '' },
      { verb: DEL, path: '/x', rev: -1 },
      { verb: NOP },
      { verb: WAIT, path: '/**', rev: 1 },
      { verb: STAT, path: '/ctl' },
      { verb: GETDIR, path: '/', offset: 0 },
      { verb: WALK, path: '/**', offset: 0 },
      { verb: GET }, // refusal comes before MISSING_ARG
    ]) {
      expect(await c.call({ tag: 1, ...req }), Verb[req.verb]).toEqual(denied);
    }
    expect(await c.call({ tag: 1, verb: ACCESS, value: '' })).toEqual(denied);
    expect(await c.call({ tag: 1, verb: ACCESS, value: 'ro' })).toEqual({ tag: 1 });
    expect([await readOk(c), await writeOk(c)]).toEqual([true, false]);
    expect(await c.call({ tag: 1, verb: ACCESS, value: 'rw' })).toEqual({ tag: 1 });
    expect([await readOk(c), await writeOk(c)]).toEqual([true, true]);
    const fresh = await connectRaw(server);
    expect(await readOk(fresh)).toBe(false); // access is per connection
  });
});

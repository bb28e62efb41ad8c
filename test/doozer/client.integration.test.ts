/**
 * The client over real TCP against the embedded Doozer server: every verb,
 * watch, TOO_LATE, permissions, cn= resolution, pipelining and faults.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  DoozerClient,
  DoozerConnectionError,
  DoozerError,
  DoozerPathError,
  DoozerPermissionError,
  DoozerTimeoutError,
  DoozerTooLateError,
  type DoozerClientOptions,
  type DoozerEvent,
} from '../../lib/doozer/index.js';
import { DoozerServer, type DoozerServerOptions } from '../../lib/testing/index.js';
import { refusedPort } from './fixture.js';
import { defer, nextEvent, rejection, track } from './helpers.js';

const FAST_RECONNECT = { initialDelayMs: 5, maxDelayMs: 50 };

async function server(options: DoozerServerOptions = {}): Promise<DoozerServer> {
  const s = await DoozerServer.start({ host: '127.0.0.1', port: 0, heartbeatMs: 0, ...options });
  defer(() => s.close());
  return s;
}

async function client(uri: string, options: DoozerClientOptions = {}): Promise<DoozerClient> {
  return track(await DoozerClient.connect(uri, { reconnect: FAST_RECONNECT, ...options }));
}

describe('DoozerClient against the embedded server', () => {
  it('speaks every verb', async () => {
    const s = await server();
    const c = await client(s.uri);
    expect(c.address).toBe(s.address);

    const rev0 = await c.rev();
    expect(rev0).toBeGreaterThan(0);
    expect(await c.self()).toBe(s.nodeId);
    await c.nop();
    expect(await c.rev()).toBeGreaterThan(rev0);

    // SET / GET
    const r1 = await c.set('/t/a', 0, 'one');
    expect(await c.get('/t/a')).toMatchObject({ rev: r1, text: 'one' });
    expect(await rejection(c.set('/t/a', 0, 'again'))).toMatchObject({ code: 'REV_MISMATCH' });
    const r2 = await c.set('/t/a', r1, Uint8Array.of(1, 2, 3));
    expect(r2).toBeGreaterThan(r1);
    expect([...(await c.get('/t/a')).value]).toEqual([1, 2, 3]);
    expect(await c.get('/t/a', r1)).toMatchObject({ rev: r1, text: 'one' });
    expect(await c.get('/t/missing')).toMatchObject({ rev: 0, text: '' });
    const r3 = await c.set('/t/b', -1, 'bee');
    await c.set('/t/sub/c', -1, 'sea');

    // STAT
    expect(await c.stat('/t/b')).toEqual({ rev: r3, len: 3, isDir: false });
    expect(await c.stat('/t')).toEqual({ rev: -2, len: 3, isDir: true });
    expect(await c.stat('/t/missing')).toEqual({ rev: 0, len: 0, isDir: false });

    // GETDIR / WALK
    const now = await c.rev();
    expect(await c.getdir('/t', now)).toEqual(['a', 'b', 'sub']);
    expect(await c.getdir('/t', now, 1, 1)).toEqual(['b']);
    expect(await c.getdir('/t', r1)).toEqual(['a']);
    expect(await rejection(c.getdir('/t/a', now))).toMatchObject({ code: 'NOTDIR' });
    expect(await rejection(c.getdir('/nope', now))).toMatchObject({ code: 'NOENT' });
    const walked: string[] = [];
    for await (const e of c.walk('/t/**', now)) walked.push(`${e.path}=${e.text}`);
    expect(walked).toEqual(['/t/a=\u0001\u0002\u0003', '/t/b=bee', '/t/sub/c=sea']);

    // WAIT from the past answers at once; from the future blocks until a change
    expect(await c.wait('/t/b', r3)).toMatchObject({
      path: '/t/b',
      rev: r3,
      text: 'bee',
      isSet: true,
    });
    const future = c.wait('/t/*', now + 1);
    const r4 = await c.set('/t/b', -1, 'changed');
    expect(await future).toMatchObject({ path: '/t/b', rev: r4, text: 'changed', flags: 4 });

    // DEL
    const waitDel = c.wait('/t/b', r4 + 1);
    await c.del('/t/b', r4);
    const del = await waitDel;
    expect([del.isDel, del.isSet, del.value.length]).toEqual([true, false, 0]);
    expect(await c.get('/t/b')).toMatchObject({ rev: 0 });
    await c.del('/t/never', -1);
    expect(await rejection(c.del('/t/a', 0))).toMatchObject({ code: 'REV_MISMATCH' });

    // Errors
    expect(await rejection(c.get('/t'))).toMatchObject({ code: 'ISDIR', verb: 'GET' });
    expect(await rejection(c.set('/t/a/below', -1, 'x'))).toMatchObject({ code: 'NOTDIR' });
    expect(await rejection(c.set('/t/a/', -1, 'x'))).toBeInstanceOf(DoozerPathError);
    const glob = await rejection(c.wait('/t/[', 1));
    expect(glob).toBeInstanceOf(DoozerError);
    expect(glob).toMatchObject({ code: 'OTHER' });
    expect((glob as DoozerError).detail).toMatch(/invalid glob pattern/);
    // No secrets configured: a wrong secret is refused, access is kept.
    expect(await rejection(c.access('wrong'))).toBeInstanceOf(DoozerPermissionError);
    await c.set('/t/still', -1, 'ok');
  });

  it('follows many events with watch() and ends cleanly on abort', async () => {
    const s = await server();
    const writer = await client(s.uri);
    const reader = await client(s.uri);
    const from = (await reader.rev()) + 1;
    const ac = new AbortController();
    const N = 300;
    const seen: DoozerEvent[] = [];
    let sawAll!: () => void;
    const allSeen = new Promise<void>((resolve) => (sawAll = resolve));
    const watching = (async () => {
      for await (const ev of reader.watch('/w/**', from, { signal: ac.signal })) {
        seen.push(ev);
        if (seen.length === N) sawAll();
      }
    })();
    const revs: number[] = [];
    for (let i = 0; i < N; i++) revs.push(await writer.set(`/w/k${i % 7}`, -1, `v${i}`));
    await allSeen;
    // The next WAIT is outstanding; aborting ends the iteration at once.
    await expect.poll(() => reader.stats().reservedTags, { timeout: 15_000 }).toBe(1);
    ac.abort();
    await watching;
    expect(seen.map((e) => e.rev)).toEqual(revs);
    expect(seen.map((e) => e.text)).toEqual(revs.map((_, i) => `v${i}`));
    expect(reader.stats()).toEqual({ reservedTags: 1, abandoned: 1, queued: 0 });
    // The aborted WAIT keeps its tag until the server answers it.
    await writer.set('/w/wake', -1, 'x');
    await expect.poll(() => reader.stats().reservedTags, { timeout: 15_000 }).toBe(0);
  });

  it('throws DoozerTooLateError from watch() when the rev fell out of history', async () => {
    const s = await server({ history: 5 });
    const c = await client(s.uri);
    const start = await c.rev();
    for (let i = 0; i < 30; i++) await c.set('/h', -1, String(i));
    const err = await rejection(
      (async () => {
        for await (const _ of c.watch('/h', start)) void _;
      })(),
    );
    expect(err).toBeInstanceOf(DoozerTooLateError);
    expect(err).toMatchObject({ code: 'TOO_LATE', verb: 'WAIT' });
  });

  it('types permission refusals and never leaks the secrets', async () => {
    const s = await server({ rwSecret: 'rw-SECRET', roSecret: 'ro-SECRET' });
    const anonymous = await client(s.uri);
    expect(await anonymous.rev()).toBeGreaterThan(0);
    const denied = await rejection(anonymous.get('/x'));
    expect(denied).toBeInstanceOf(DoozerPermissionError);
    expect(denied).toMatchObject({ code: 'OTHER', detail: 'permission denied', verb: 'GET' });

    const reader = await client(`${s.uri}&sk=ro-SECRET`);
    expect(await reader.get('/x')).toMatchObject({ rev: 0 });
    expect(await rejection(reader.set('/x', -1, 'no'))).toBeInstanceOf(DoozerPermissionError);

    const writer = await client(`${s.uri}&sk=rw-SECRET`);
    const rev = await writer.set('/x', -1, 'yes');
    expect(await reader.get('/x')).toMatchObject({ rev, text: 'yes' });

    // access() upgrades a connection, and is kept across reconnects.
    await anonymous.access('rw-SECRET');
    await anonymous.set('/y', -1, 'up');
    s.dropConnections();
    await nextEvent(anonymous, 'reconnected', true);
    expect(await anonymous.set('/y', -1, 'still')).toBeGreaterThan(0);

    const wrong = await rejection(DoozerClient.connect(`${s.uri}&sk=bad-SECRET`));
    expect(wrong).toBeInstanceOf(DoozerPermissionError);
    const shown = [
      String(wrong),
      inspect(wrong),
      String(writer),
      inspect(writer),
      inspect(anonymous),
    ];
    expect(shown.join('\n')).not.toMatch(/SECRET/);
  });

  it('resolves cn= through the boot URI', async () => {
    const s = await server({ clusterName: 'main-cluster' });
    const c = await client('doozer:?cn=main-cluster', { bootUri: s.uri });
    expect(c.address).toBe(s.address);
    expect(await c.self()).toBe(s.nodeId);

    // A cluster listed in another (boot) server, with a dead member first.
    const target = await server({ clusterName: 'other' });
    const boot = await client(s.uri);
    const dead = await refusedPort();
    await boot.set('/ctl/ns/prod/a-node', -1, `127.0.0.1:${dead}`);
    await boot.set('/ctl/ns/prod/b-node', -1, target.address);
    const prod = await client('doozer:?cn=prod', { bootUri: s.uri, startAt: 'first' });
    expect(prod.address).toBe(target.address);
    expect(await prod.self()).toBe(target.nodeId);

    expect(
      await rejection(DoozerClient.connect('doozer:?cn=empty', { bootUri: s.uri })),
    ).toMatchObject({
      name: 'DoozerUriError',
      message: expect.stringMatching(/no members/) as unknown,
    });
    expect(await rejection(DoozerClient.connect('doozer:?cn=prod'))).toMatchObject({
      name: 'DoozerUriError',
    });
    // Addresses win over a cluster name, as in the Go client: cn= is looked up
    // only when the URI gives no ca= (here the lookup would find no members).
    const direct = await client(`doozer:?ca=${target.address}&cn=empty`, { bootUri: s.uri });
    expect(await direct.self()).toBe(target.nodeId);
  });

  it('pipelines 1,000 concurrent GETs (and SETs) on one connection', async () => {
    const s = await server();
    const c = await client(s.uri);
    const N = 1000;
    const revs = await Promise.all(
      Array.from({ length: N }, (_, i) => c.set(`/p/f${i}`, 0, `value-${i}`)),
    );
    expect(new Set(revs).size).toBe(N);
    const files = await Promise.all(Array.from({ length: N }, (_, i) => c.get(`/p/f${i}`)));
    files.forEach((f, i) => expect([f.text, f.rev]).toEqual([`value-${i}`, revs[i]]));
    expect(s.connections).toBe(1);
    expect(await c.getdir('/p', await c.rev())).toHaveLength(N);
    expect(c.stats()).toEqual({ reservedTags: 0, abandoned: 0, queued: 0 });
  });

  it('survives server faults: drop, pause, stop/restart', async () => {
    const s = await server();
    const c = await client(s.uri);
    await c.set('/f', -1, 'before');

    // dropConnections: outstanding WAIT fails, the client reconnects by itself.
    const lost = rejection(c.wait('/quiet', (await c.rev()) + 1000, { timeoutMs: 60_000 }));
    const reconnected = nextEvent(c, 'reconnected', true);
    s.dropConnections();
    expect(await lost).toBeInstanceOf(DoozerConnectionError);
    await reconnected;
    expect((await c.get('/f')).text).toBe('before');

    // pause: a request times out; its tag stays reserved until resume answers it.
    s.pause();
    expect(await rejection(c.get('/f', undefined, { timeoutMs: 50 }))).toBeInstanceOf(
      DoozerTimeoutError,
    );
    expect(c.stats()).toMatchObject({ reservedTags: 1, abandoned: 1 });
    const afterResume = c.get('/f');
    s.resume();
    expect((await afterResume).text).toBe('before');
    expect(c.stats()).toEqual({ reservedTags: 0, abandoned: 0, queued: 0 });

    // stop, then restart with state: requests made meanwhile wait and succeed.
    const down = nextEvent(c, 'disconnected', true);
    await s.stop();
    await down;
    const queued = c.get('/f');
    const back = nextEvent(c, 'reconnected', true);
    await s.restart({ keepState: true });
    await back;
    expect((await queued).text).toBe('before');
  });
});

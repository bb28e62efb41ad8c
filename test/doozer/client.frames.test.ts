/**
 * Frame-level tests of the client against a raw-socket fixture: multiplexing,
 * framing faults, reconnect, READONLY, ACCESS ordering and tag reservation.
 */
import { Socket } from 'node:net';
import { inspect } from 'node:util';
import { isFieldSet } from '@bufbuild/protobuf';
import { describe, expect, it, vi } from 'vitest';
import {
  DoozerClient,
  DoozerConnectionError,
  DoozerError,
  DoozerPathError,
  DoozerPermissionError,
  DoozerProtocolError,
  DoozerRevRangeError,
  DoozerTimeoutError,
  DoozerTooLateError,
  DoozerArgumentError,
  WATCH_PROTOCOL_RETRIES,
  type DoozerClientOptions,
} from '../../lib/doozer/index.js';
import { Err, RequestSchema, Verb, type Request } from '../../lib/wire/index.js';
import { RawServer, refusedPort, responseFrame, type AutoAnswer, type RawConn } from './fixture.js';
import { ipv6Loopback } from '../server/helpers.js';
import { captureLogger, defer, nextEvent, rejection, track } from './helpers.js';

const FAST_RECONNECT = { initialDelayMs: 5, maxDelayMs: 50 };
const text = (s: string): Uint8Array => Buffer.from(s);

async function fixture(auto?: AutoAnswer): Promise<RawServer> {
  const server = await RawServer.start(auto);
  defer(() => server.close());
  return server;
}

async function connected(
  server: RawServer,
  options: DoozerClientOptions = {},
  extra = '',
): Promise<{ client: DoozerClient; conn: RawConn }> {
  const [client, conn] = await Promise.all([
    // No keepalive unless a test asks: the fixtures answer only what a test scripts.
    DoozerClient.connect(server.uri(extra), {
      reconnect: FAST_RECONNECT,
      keepalive: false,
      ...options,
    }),
    server.nextConnection(),
  ]);
  track(client);
  return { client, conn };
}

describe('DoozerClient over a raw socket', () => {
  it('sends well-formed requests and decodes answers of every verb', async () => {
    const server = await fixture();
    const { client, conn } = await connected(server);

    const rev = client.rev();
    let req = await conn.next();
    expect(req.verb).toBe(Verb.REV);
    expect(isFieldSet(req, RequestSchema.field.tag)).toBe(true);
    conn.reply(req, { rev: 42n });
    expect(await rev).toBe(42);

    const get = client.get('/a/b');
    req = await conn.next();
    expect([req.verb, req.path, isFieldSet(req, RequestSchema.field.rev)]).toEqual([
      Verb.GET,
      '/a/b',
      false,
    ]);
    conn.reply(req, { rev: 7n, value: text('hi') });
    const file = await get;
    expect([file.rev, file.text, [...file.value]]).toEqual([7, 'hi', [104, 105]]);

    const getAt = client.get('/a/b', 5);
    req = await conn.next();
    expect(req.rev).toBe(5n);
    conn.reply(req, {});
    expect(await getAt).toMatchObject({ rev: 0, text: '' });

    const set = client.set('/a/b', -1, 'héllo');
    req = await conn.next();
    expect([req.verb, req.path, req.rev, Buffer.from(req.value).toString()]).toEqual([
      Verb.SET,
      '/a/b',
      -1n,
      'héllo',
    ]);
    conn.reply(req, { rev: 9n });
    expect(await set).toBe(9);

    const setBytes = client.set('/bin', 0, Uint8Array.of(0, 255));
    req = await conn.next();
    expect([...req.value]).toEqual([0, 255]);
    conn.reply(req, { rev: 10n });
    expect(await setBytes).toBe(10);

    const del = client.del('/a/b', 9);
    req = await conn.next();
    expect([req.verb, req.path, req.rev]).toEqual([Verb.DEL, '/a/b', 9n]);
    conn.reply(req, {});
    expect(await del).toBeUndefined();

    const wait = client.wait('/a/**', 11);
    req = await conn.next();
    expect([req.verb, req.path, req.rev]).toEqual([Verb.WAIT, '/a/**', 11n]);
    conn.reply(req, { path: '/a/c', rev: 12n, value: text('v'), flags: 4 });
    expect(await wait).toMatchObject({
      path: '/a/c',
      rev: 12,
      text: 'v',
      flags: 4,
      isSet: true,
      isDel: false,
    });

    const nop = client.nop();
    req = await conn.next();
    expect(req.verb).toBe(Verb.NOP);
    conn.reply(req, {});
    expect(await nop).toBeUndefined();

    const stat = client.stat('/a');
    req = await conn.next();
    expect([req.verb, req.path]).toEqual([Verb.STAT, '/a']);
    conn.reply(req, { rev: -2n, len: 3 });
    expect(await stat).toEqual({ rev: -2, len: 3, isDir: true });

    const self = client.self();
    req = await conn.next();
    expect(req.verb).toBe(Verb.SELF);
    conn.reply(req, { value: text('node-1') });
    expect(await self).toBe('node-1');

    const access = client.access('pw');
    req = await conn.next();
    expect([req.verb, Buffer.from(req.value).toString()]).toEqual([Verb.ACCESS, 'pw']);
    conn.reply(req, {});
    expect(await access).toBeUndefined();
  });

  it('matches answers to requests by tag in any order', async () => {
    const server = await fixture();
    const { client, conn } = await connected(server);
    const gets = ['/a', '/b', '/c', '/d'].map((p) => client.get(p));
    const reqs: Request[] = [];
    for (let i = 0; i < 4; i++) reqs.push(await conn.next());
    expect(new Set(reqs.map((r) => r.tag)).size).toBe(4);
    for (const r of [...reqs].reverse())
      conn.reply(r, { rev: 1n, value: text(`value of ${r.path}`) });
    expect((await Promise.all(gets)).map((f) => f.text)).toEqual(
      ['/a', '/b', '/c', '/d'].map((p) => `value of ${p}`),
    );
  });

  it('decodes coalesced answers and answers split across writes', async () => {
    const server = await fixture();
    const { client, conn } = await connected(server);
    const gets = Array.from({ length: 20 }, (_, i) => client.get(`/f${i}`));
    await conn.receivedCount(20);
    const frames = conn.received.map((r) =>
      responseFrame({ tag: r.tag, rev: 1n, value: text(r.path) }),
    );
    // First ten in one write, the rest one byte per write.
    conn.write(Buffer.concat(frames.slice(0, 10)));
    for (const byte of Buffer.concat(frames.slice(10))) conn.write(Uint8Array.of(byte));
    expect((await Promise.all(gets)).map((f) => f.text)).toEqual(conn.received.map((r) => r.path));
  });

  it('batches pipelined requests of one tick into a single socket write', async () => {
    const server = await fixture((req) => ({ rev: BigInt(req.tag) }));
    const { client, conn } = await connected(server);
    const write = vi.spyOn(Socket.prototype, 'write');
    defer(() => write.mockRestore());
    const revs = await Promise.all(Array.from({ length: 100 }, () => client.rev()));
    expect(revs).toHaveLength(100);
    expect(write.mock.contexts.filter((socket) => socket !== conn.socket)).toHaveLength(1);
    expect(conn.received).toHaveLength(100);
  });

  describe('protocol faults close the connection with DoozerProtocolError', () => {
    async function expectProtocolFault(
      inject: (conn: RawConn, reqs: Request[]) => void,
      pattern: RegExp,
      options: DoozerClientOptions = {},
    ): Promise<void> {
      const server = await fixture();
      const { client, conn } = await connected(server, options);
      const outstanding = [client.wait('/x', 1), client.get('/y'), client.wait('/z', 5)];
      const rejections = outstanding.map((p) => rejection(p));
      const reqs = [await conn.next(), await conn.next(), await conn.next()];
      const disconnected = nextEvent(client, 'disconnected', true);
      inject(conn, reqs);
      for (const e of await Promise.all(rejections)) {
        expect(e).toBeInstanceOf(DoozerProtocolError);
        expect(e).toBeInstanceOf(DoozerConnectionError);
        expect((e as Error).message).toMatch(pattern);
      }
      const event = await disconnected;
      expect(event.reason).toBeInstanceOf(DoozerProtocolError);
      expect(client.stats()).toEqual({ reservedTags: 0, abandoned: 0, queued: 0 });
      // The normal reconnect policy applies: a new connection, usable.
      const again = await server.nextConnection();
      await nextEvent(client, 'reconnected');
      const rev = client.rev();
      const req = await again.next();
      again.reply(req, { rev: 3n });
      expect(await rev).toBe(3);
    }

    it('an answer for a tag that is not reserved', async () => {
      await expectProtocolFault((conn, reqs) => {
        conn.reply(Math.max(...reqs.map((r) => r.tag)) + 1000, { rev: 1n });
      }, /tag \d+, which is not reserved/);
    });

    it('an answer without a tag', async () => {
      await expectProtocolFault((conn) => conn.write(responseFrame({ rev: 1n })), /without a tag/);
    });

    it('garbage bytes that are not a protobuf Response', async () => {
      await expectProtocolFault(
        (conn) => conn.write(Buffer.from([0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff])),
        /undecodable response/,
      );
    });

    it('an oversize frame length', async () => {
      await expectProtocolFault(
        (conn) => conn.write(Buffer.from([0x00, 0x10, 0x00, 0x00])),
        /exceeds the limit of 4096 bytes/,
        { maxFrameBytes: 4096 },
      );
    });

    it('the socket closed in the middle of a frame', async () => {
      await expectProtocolFault((conn, reqs) => {
        const frame = responseFrame({ tag: reqs[0]!.tag, rev: 2n, value: text('partial') });
        conn.socket.end(frame.subarray(0, frame.length - 3));
      }, /ended mid-frame/);
    });
  });

  it('rejects 10,000 outstanding WAITs with DoozerConnectionError on close, leaving nothing behind', async () => {
    const server = await fixture();
    const { client, conn } = await connected(server);
    const waits = Array.from({ length: 10_000 }, (_, i) => rejection(client.wait(`/w/${i}`, 1)));
    await conn.receivedCount(10_000);
    expect(new Set(conn.received.map((r) => r.tag)).size).toBe(10_000);
    expect(client.stats()).toEqual({ reservedTags: 10_000, abandoned: 0, queued: 0 });
    const closedEvent = nextEvent(client, 'closed', true);
    await client.close();
    await closedEvent;
    const errors = await Promise.all(waits);
    expect(errors.every((e) => e instanceof DoozerConnectionError)).toBe(true);
    expect(client.stats()).toEqual({ reservedTags: 0, abandoned: 0, queued: 0 });
    expect(client.state).toBe('closed');
    await conn.closed;
    // Later requests reject at once; close() stays idempotent.
    expect(await rejection(client.rev())).toBeInstanceOf(DoozerConnectionError);
    await client.close();
  });

  it('rejects every outstanding request when the server drops the connection, and never re-sends them', async () => {
    const server = await fixture();
    const { client, conn } = await connected(server);
    const waits = Array.from({ length: 1000 }, (_, i) => rejection(client.wait(`/w/${i}`, 1)));
    const set = rejection(client.set('/s', 0, 'x'));
    await conn.receivedCount(1001);
    conn.drop();
    const errors = await Promise.all([...waits, set]);
    expect(errors.every((e) => e instanceof DoozerConnectionError)).toBe(true);
    const again = await server.nextConnection();
    await nextEvent(client, 'reconnected');
    const nop = client.nop();
    const req = await again.next();
    expect(req.verb).toBe(Verb.NOP); // the SET was not re-sent
    again.reply(req);
    await nop;
    expect(again.received).toHaveLength(1);
  });

  it('keeps the tag of an aborted or timed-out request reserved until the server answers', async () => {
    const server = await fixture();
    const { client, conn } = await connected(server, { maxTag: 3 });
    const ac = new AbortController();
    const aborted = rejection(client.wait('/slow', 1, { signal: ac.signal }));
    const w1 = await conn.next();
    ac.abort(new Error('gave up'));
    expect(((await aborted) as Error).message).toBe('gave up');
    expect(client.stats()).toEqual({ reservedTags: 1, abandoned: 1, queued: 0 });

    const timedOut = rejection(client.get('/slow2', undefined, { timeoutMs: 20 }));
    const w2 = await conn.next();
    const err = await timedOut;
    expect(err).toBeInstanceOf(DoozerTimeoutError);
    expect(err).toMatchObject({ verb: 'GET', timeoutMs: 20 });
    expect(client.stats()).toEqual({ reservedTags: 2, abandoned: 2, queued: 0 });

    // Tags wrap at 3; the next requests must avoid the reserved ones.
    const tags = new Set([w1.tag, w2.tag]);
    for (let i = 0; i < 5; i++) {
      const nop = client.nop();
      const req = await conn.next();
      expect(tags.has(req.tag)).toBe(false);
      conn.reply(req);
      await nop;
    }
    // Late answers are discarded, and free the tags.
    conn.reply(w1, { path: '/slow', rev: 5n, flags: 4 });
    conn.reply(w2, { rev: 1n });
    const reused: number[] = [];
    for (let i = 0; i < 3; i++) {
      const nop = client.nop();
      const req = await conn.next();
      reused.push(req.tag);
      conn.reply(req);
      await nop;
    }
    expect(new Set(reused)).toEqual(new Set([1, 2, 3]));
    expect(client.stats()).toEqual({ reservedTags: 0, abandoned: 0, queued: 0 });
  });

  it('applies requestTimeoutMs to ordinary requests but never to WAIT', async () => {
    const server = await fixture();
    const { client, conn } = await connected(server, { requestTimeoutMs: 30 });
    const wait = client.wait('/quiet', 1);
    const waitReq = await conn.next();
    expect(await rejection(client.get('/x'))).toBeInstanceOf(DoozerTimeoutError);
    await conn.next();
    // The WAIT is still pending after the GET timed out; answer it now.
    conn.reply(waitReq, { path: '/quiet', rev: 2n, flags: 8 });
    expect(await wait).toMatchObject({ isDel: true, rev: 2 });
    expect(await rejection(client.wait('/quiet', 3, { timeoutMs: 20 }))).toBeInstanceOf(
      DoozerTimeoutError,
    );
  });

  it('rejects at once with an already aborted signal, sending nothing', async () => {
    const server = await fixture((req) => (req.verb === Verb.NOP ? {} : undefined));
    const { client, conn } = await connected(server);
    const reason = new Error('already');
    expect(
      await rejection(client.get('/x', undefined, { signal: AbortSignal.abort(reason) })),
    ).toBe(reason);
    await client.nop();
    expect(conn.received.map((r) => r.verb)).toEqual([Verb.NOP]);
  });

  it('maps error answers to typed errors', async () => {
    const server = await fixture((req) => {
      switch (req.path) {
        case '/late':
          return { errCode: Err.TOO_LATE };
        case '/denied':
          return { errCode: Err.OTHER, errDetail: 'permission denied' };
        case '/stale':
          return { errCode: Err.REV_MISMATCH };
        case '/dir':
          return { errCode: Err.ISDIR };
        case '/huge':
          return { rev: 1n << 60n };
        default:
          return undefined;
      }
    });
    const { client } = await connected(server);
    const late = await rejection(client.wait('/late', 1));
    expect(late).toBeInstanceOf(DoozerTooLateError);
    expect(late).toMatchObject({ code: 'TOO_LATE', verb: 'WAIT', path: '/late' });
    const denied = await rejection(client.set('/denied', 0, 'x'));
    expect(denied).toBeInstanceOf(DoozerPermissionError);
    expect(denied).toMatchObject({ code: 'OTHER', detail: 'permission denied' });
    const stale = await rejection(client.set('/stale', 3, 'x'));
    expect(stale).toBeInstanceOf(DoozerError);
    expect(stale).toMatchObject({ code: 'REV_MISMATCH', detail: '', verb: 'SET', path: '/stale' });
    expect((stale as Error).message).toBe('SET /stale: REV_MISMATCH');
    expect(await rejection(client.get('/dir'))).toMatchObject({ code: 'ISDIR' });
    const huge = await rejection(client.get('/huge'));
    expect(huge).toBeInstanceOf(DoozerRevRangeError);
    expect(client.state).toBe('connected');
  });

  it('validates arguments before sending: DoozerPathError for SET/DEL, DoozerArgumentError for revs', async () => {
    const server = await fixture((req) =>
      req.verb === Verb.GET || req.verb === Verb.NOP ? {} : undefined,
    );
    const { client, conn } = await connected(server);
    for (const bad of ['', 'a', '/a/', '/a//b', '/a b', '/a=b']) {
      expect(await rejection(client.set(bad, 0, 'x'))).toBeInstanceOf(DoozerPathError);
      expect(await rejection(client.del(bad, -1))).toBeInstanceOf(DoozerPathError);
    }
    for (const rev of [1.5, Number.MAX_SAFE_INTEGER + 1, NaN]) {
      expect(await rejection(client.set('/ok', rev, 'x'))).toBeInstanceOf(DoozerArgumentError);
      expect(await rejection(client.get('/ok', rev))).toBeInstanceOf(DoozerArgumentError);
    }
    expect(await rejection(client.get('/ok', 1, { timeoutMs: -1 }))).toBeInstanceOf(
      DoozerArgumentError,
    );
    expect(await rejection(client.getdir('/ok', 1, 2 ** 40))).toBeInstanceOf(DoozerArgumentError);
    // GET sends what it is given; the server decides.
    await client.get('bad path');
    await client.nop();
    expect(conn.received.map((r) => [r.verb, r.path])).toEqual([
      [Verb.GET, 'bad path'],
      [Verb.NOP, ''],
    ]);
  });

  it('refuses to send a request larger than maxFrameBytes', async () => {
    const server = await fixture();
    const { client } = await connected(server, { maxFrameBytes: 1024 });
    const err = await rejection(client.set('/big', -1, new Uint8Array(2000)));
    expect(err).toBeInstanceOf(DoozerArgumentError);
    expect((err as Error).message).toMatch(/exceeds maxFrameBytes/);
    expect(client.stats().reservedTags).toBe(0);
  });

  it('lists a directory with pipelined GETDIR until RANGE, and walks until RANGE', async () => {
    const names = ['a', 'b', 'c', 'd', 'e'];
    const server = await fixture((req) => {
      const name = names[req.offset];
      if (req.verb === Verb.STAT) {
        return req.path === '/d' ? { rev: -2n, len: names.length } : { rev: 3n, len: 1 };
      }
      if (req.verb === Verb.GETDIR) {
        if (req.path === '/file') return { errCode: Err.NOTDIR };
        return name === undefined || req.offset < 0 ? { errCode: Err.RANGE } : { path: name };
      }
      if (req.verb === Verb.WALK) {
        return name === undefined
          ? { errCode: Err.RANGE }
          : { path: `/d/${name}`, value: text(name), rev: 3n, flags: 4 };
      }
      return undefined;
    });
    const { client, conn } = await connected(server);
    expect(await client.getdir('/d', 10)).toEqual(names);
    expect(await client.getdir('/d', 10, 1, 2)).toEqual(['b', 'c']);
    expect(await client.getdir('/d', 10, 3, 100)).toEqual(['d', 'e']);
    expect(await client.getdir('/d', 10, 0, 0)).toEqual([]);
    expect(await rejection(client.getdir('/d', 10, -1))).toBeInstanceOf(DoozerArgumentError);
    expect(await rejection(client.getdir('/file', 10))).toMatchObject({ code: 'NOTDIR' });
    const getdirs = conn.received.filter((r) => r.verb === Verb.GETDIR);
    expect(getdirs.every((r) => r.rev === 10n)).toBe(true);
    // Sized by STAT at the same rev: exactly one GETDIR per entry for a full listing.
    const before = conn.received.length;
    expect(await client.getdir('/d', 10)).toEqual(names);
    expect(conn.received.slice(before).map((r) => [r.verb, r.rev])).toEqual([
      [Verb.STAT, 10n],
      ...names.map(() => [Verb.GETDIR, 10n]),
    ]);
    expect(client.stats().reservedTags).toBe(0);

    const walked = [];
    for await (const entry of client.walk('/d/*', 10))
      walked.push([entry.path, entry.text, entry.rev]);
    expect(walked).toEqual(names.map((n) => [`/d/${n}`, n, 3]));
    // Stopping early leaves no unhandled rejection and frees every tag.
    for await (const entry of client.walk('/d/*', 10)) {
      expect(entry.path).toBe('/d/a');
      break;
    }
    await vi.waitFor(() => expect(client.stats().reservedTags).toBe(0), { timeout: 15_000 });
  });

  it('fails over to the next ca address and reconnects with backoff after a drop', async () => {
    const refused = await refusedPort();
    const server = await fixture((req) => (req.verb === Verb.REV ? { rev: 1n } : undefined));
    const { lines, logger } = captureLogger();
    const uri = `doozer:?ca=127.0.0.1:${refused}&ca=${server.address}`;
    const [client, conn] = await Promise.all([
      DoozerClient.connect(uri, { startAt: 'first', reconnect: FAST_RECONNECT, logger }),
      server.nextConnection(),
    ]);
    track(client);
    expect(client.address).toBe(server.address);
    expect(client.state).toBe('connected');
    expect(await nextEvent(client, 'connected')).toEqual({
      type: 'connected',
      address: server.address,
    });

    const events: string[] = [];
    client.on('disconnected', (e) => events.push(`disconnected ${e.address}`));
    client.on('reconnected', (e) => events.push(`reconnected ${e.address}`));
    const reconnected = nextEvent(client, 'reconnected', true);
    conn.drop();
    await nextEvent(client, 'disconnected');
    // Made while disconnected: waits for the reconnection instead of failing.
    const rev = client.rev();
    expect(['disconnected', 'connecting']).toContain(client.state);
    expect(client.address).toBeUndefined();
    await server.nextConnection();
    expect(await reconnected).toEqual({ type: 'reconnected', address: server.address });
    expect(await rev).toBe(1);
    expect(events).toEqual([`disconnected ${server.address}`, `reconnected ${server.address}`]);
    expect(client.connectionId).toBe(2);
    // The rotation went through the refused address first.
    expect(lines.some((l) => l.includes(`127.0.0.1:${refused}`) && l.includes('connecting'))).toBe(
      true,
    );
  });

  it('connects over IPv6 loopback with a bracketed address', async (ctx) => {
    if (!(await ipv6Loopback())) ctx.skip();
    const server = await RawServer.start(
      (req) => (req.verb === Verb.REV ? { rev: 6n } : undefined),
      '::1',
    );
    defer(() => server.close());
    expect(server.address).toMatch(/^\[::1\]:\d+$/);
    const client = track(await DoozerClient.connect(server.uri()));
    expect(client.address).toBe(server.address);
    expect(await client.rev()).toBe(6);
  });

  it('grows the reconnect delay while every address refuses', async () => {
    const server = await fixture();
    const { lines, logger } = captureLogger();
    const { client, conn } = await connected(server, {
      logger,
      reconnect: { initialDelayMs: 10, maxDelayMs: 40, multiplier: 2, jitter: 0 },
    });
    await server.close();
    await conn.closed;
    const delays = (): number[] =>
      lines.flatMap((l) => /reconnecting in (\d+) ms/.exec(l)?.slice(1).map(Number) ?? []);
    await vi.waitFor(() => expect(delays().length).toBeGreaterThanOrEqual(5), { timeout: 15_000 });
    expect(delays().slice(0, 5)).toEqual([10, 20, 40, 40, 40]);
    expect(client.state).not.toBe('connected');
    expect(lines.some((l) => l.startsWith('warn doozer: disconnected from'))).toBe(true);
  });

  it('does not adopt a connection that failed in the same chunk as its ACCESS answer', async () => {
    const server = await fixture((req, conn) => {
      if (req.verb === Verb.ACCESS) {
        conn.write(
          Buffer.concat([responseFrame({ tag: req.tag }), Buffer.from([0, 0, 0, 2, 0xff, 0xff])]),
        );
        return null;
      }
      return undefined;
    });
    const err = await rejection(DoozerClient.connect(server.uri('&sk=k')));
    expect(err).toBeInstanceOf(DoozerConnectionError);
  });

  it('pins requests to a connection with connectionId', async () => {
    const server = await fixture((req) => (req.verb === Verb.REV ? { rev: 8n } : undefined));
    const { client, conn } = await connected(server);
    expect(client.connectionId).toBe(1);
    expect(await client.rev({ connectionId: 1 })).toBe(8);
    conn.drop();
    await nextEvent(client, 'disconnected');
    expect(client.connectionId).toBe(1);
    // The pinned connection is gone: reject at once instead of queueing.
    const gone = await rejection(client.rev({ connectionId: 1 }));
    expect(gone).toBeInstanceOf(DoozerConnectionError);
    expect((gone as Error).message).toMatch(/connection #1 is gone/);
    const unpinned = client.rev();
    await nextEvent(client, 'reconnected');
    expect(await unpinned).toBe(8);
    expect(client.connectionId).toBe(2);
    expect(await rejection(client.set('/x', 0, 'v', { connectionId: 1 }))).toBeInstanceOf(
      DoozerConnectionError,
    );
    expect(await client.rev({ connectionId: 2 })).toBe(8);
    expect(server.all.flatMap((c) => c.received.map((r) => r.verb))).not.toContain(Verb.SET);
  });

  it('waits for the reconnection within a request timeout, and fails it when the timeout passes', async () => {
    const { lines, logger } = captureLogger();
    const server = await fixture();
    const { client, conn } = await connected(server, {
      logger,
      reconnect: { initialDelayMs: 1000, maxDelayMs: 1000, jitter: 0 },
    });
    conn.drop();
    await nextEvent(client, 'disconnected');
    const err = await rejection(client.rev({ timeoutMs: 30 }));
    expect(err).toBeInstanceOf(DoozerTimeoutError);
    expect(client.stats().queued).toBe(0);
    const ac = new AbortController();
    const aborted = rejection(client.get('/q', undefined, { signal: ac.signal }));
    expect(client.stats().queued).toBe(1);
    ac.abort(new Error('not any more'));
    expect(((await aborted) as Error).message).toBe('not any more');
    expect(client.stats().queued).toBe(0);
    expect(lines.some((l) => /reconnecting in \d+ ms/.test(l))).toBe(true);
  });

  it('with reconnect off, rejects requests at once after a drop', async () => {
    const server = await fixture();
    const { client, conn } = await connected(server, { reconnect: false });
    const pending = rejection(client.wait('/x', 1));
    await conn.next();
    conn.drop();
    expect(await pending).toBeInstanceOf(DoozerConnectionError);
    await nextEvent(client, 'disconnected');
    expect(client.state).toBe('disconnected');
    const err = await rejection(client.rev());
    expect(err).toBeInstanceOf(DoozerConnectionError);
    expect((err as Error).message).toMatch(/reconnect is off/);
  });

  it('moves to the next node when a request is answered READONLY', async () => {
    const nodeB = await fixture((req) => (req.verb === Verb.SET ? { rev: 77n } : undefined));
    const nodeA = await fixture((req) =>
      req.verb === Verb.SET ? { errCode: Err.READONLY } : undefined,
    );
    const uri = `doozer:?ca=${nodeA.address}&ca=${nodeB.address}`;
    const [client, connA] = await Promise.all([
      DoozerClient.connect(uri, { startAt: 'first', reconnect: FAST_RECONNECT }),
      nodeA.nextConnection(),
    ]);
    track(client);
    expect(client.address).toBe(nodeA.address);
    const otherWait = rejection(client.wait('/x', 1));
    await connA.next();
    const reconnected = nextEvent(client, 'reconnected', true);
    const err = await rejection(client.set('/m', 0, 'me'));
    expect(err).toBeInstanceOf(DoozerError);
    expect(err).toMatchObject({ code: 'READONLY', verb: 'SET' });
    expect(await otherWait).toBeInstanceOf(DoozerConnectionError);
    await connA.closed;
    expect((await reconnected).address).toBe(nodeB.address);
    expect(await client.set('/m', 0, 'me')).toBe(77);
  });

  it('sends ACCESS first on every (re)connection, before any queued request', async () => {
    const secret = 's3cr3t-VALUE';
    let holdAccess = false;
    const server = await fixture((req) => {
      if (req.verb === Verb.ACCESS && !holdAccess) return {};
      if (req.verb === Verb.REV) return { rev: 5n };
      return undefined;
    });
    const { client, conn } = await connected(server, {}, `&sk=${secret}`);
    expect(conn.received.map((r) => r.verb)).toEqual([Verb.ACCESS]);
    expect(Buffer.from(conn.received[0]!.value).toString()).toBe(secret);

    holdAccess = true;
    conn.drop();
    await nextEvent(client, 'disconnected');
    const revs = [client.rev(), client.rev()];
    const again = await server.nextConnection();
    const access = await again.next();
    expect(access.verb).toBe(Verb.ACCESS);
    expect(Buffer.from(access.value).toString()).toBe(secret);
    // Nothing else goes out before ACCESS is answered.
    expect(again.received).toHaveLength(1);
    expect(client.state).toBe('connecting');
    again.reply(access);
    expect(await Promise.all(revs)).toEqual([5, 5]);
    expect(again.received.map((r) => r.verb)).toEqual([Verb.ACCESS, Verb.REV, Verb.REV]);
  });

  it('fails queued requests with DoozerPermissionError when ACCESS is refused on a reconnection', async () => {
    let refuse = false;
    const server = await fixture((req) => {
      if (req.verb === Verb.ACCESS) {
        return refuse ? { errCode: Err.OTHER, errDetail: 'permission denied' } : {};
      }
      return req.verb === Verb.REV ? { rev: 5n } : undefined;
    });
    const { client, conn } = await connected(server, {}, '&sk=rotated-away');
    refuse = true;
    conn.drop();
    await nextEvent(client, 'disconnected');
    const queued = rejection(client.rev());
    expect(await queued).toBeInstanceOf(DoozerPermissionError);
    expect(String(await queued)).not.toContain('rotated-away');
    // It keeps trying; once the secret is accepted again it reconnects.
    refuse = false;
    await nextEvent(client, 'reconnected');
    expect(await client.rev()).toBe(5);
  });

  it('fails to connect with DoozerPermissionError when the secret is refused, without leaking it', async () => {
    const server = await fixture((req) =>
      req.verb === Verb.ACCESS ? { errCode: Err.OTHER, errDetail: 'permission denied' } : undefined,
    );
    const { lines, logger } = captureLogger();
    const err = await rejection(DoozerClient.connect(server.uri('&sk=hunter2'), { logger }));
    expect(err).toBeInstanceOf(DoozerPermissionError);
    expect(inspect(err)).not.toContain('hunter2');
    expect(JSON.stringify(lines)).not.toContain('hunter2');
  });

  it('times out a connection attempt whose ACCESS is never answered', async () => {
    const server = await fixture(() => null);
    const err = await rejection(
      DoozerClient.connect(server.uri('&sk=x'), { connectTimeoutMs: 50 }),
    );
    expect(err).toBeInstanceOf(DoozerConnectionError);
    expect(((err as Error).cause as Error).message).toMatch(/timed out after 50 ms/);
    await (
      await server.nextConnection()
    ).closed;
  });

  it('never shows the secret in toString, inspect, JSON, errors or logs', async () => {
    const secret = 'TOPSECRET-42';
    const server = await fixture((req) => (req.verb === Verb.ACCESS ? {} : undefined));
    const { lines, logger } = captureLogger();
    const { client, conn } = await connected(server, { logger }, `&sk=${secret}`);
    const shown = [
      client.toString(),
      inspect(client, { depth: 10, showHidden: true }),
      inspect(client.uri, { depth: 10, showHidden: true }),
      JSON.stringify({ uri: client.uri }),
      String(client.uri),
      String(client),
    ];
    expect(client.uri.hasSecret).toBe(true);
    expect(shown.join('\n')).toContain('sk=***');
    conn.drop();
    await nextEvent(client, 'disconnected');
    await nextEvent(client, 'reconnected', true);
    const bad = await rejection(DoozerClient.connect(`doozer:?sk=${secret}&ca=nohost:99999`));
    shown.push(String(bad), inspect(bad));
    await client.close();
    shown.push(...lines);
    expect(lines.length).toBeGreaterThan(2);
    expect(shown.join('\n')).not.toContain(secret);
  });

  it('emits connection events on state$ (replaying the latest) and as events, and completes on close', async () => {
    const server = await fixture();
    const { client, conn } = await connected(server);
    const seen: string[] = [];
    let completed = false;
    const sub = client.state$.subscribe({
      next: (e) => seen.push(e.type),
      complete: () => (completed = true),
    });
    defer(() => sub.unsubscribe());
    expect(seen).toEqual(['connected']);
    const fromEmitter: unknown[] = [];
    client.on('disconnected', (e) => fromEmitter.push(e));
    conn.drop();
    const disc = await nextEvent(client, 'disconnected');
    expect(fromEmitter).toEqual([disc]);
    expect(fromEmitter[0]).toBe(disc);
    expect(disc.reason).toBeInstanceOf(DoozerConnectionError);
    await nextEvent(client, 'reconnected');
    client.on('closed', () => {
      throw new Error('a listener that throws must not break close()');
    });
    await client.close();
    expect(seen).toEqual(['connected', 'disconnected', 'reconnected', 'closed']);
    expect(completed).toBe(true);
    expect(client.state).toBe('closed');
  });

  it('close() while reconnecting stops the reconnection and rejects queued requests', async () => {
    const refused = await refusedPort();
    const server = await fixture();
    const uri = `doozer:?ca=${server.address}&ca=127.0.0.1:${refused}`;
    const [client, conn] = await Promise.all([
      DoozerClient.connect(uri, {
        startAt: 'first',
        reconnect: { initialDelayMs: 10_000, maxDelayMs: 10_000 },
      }),
      server.nextConnection(),
    ]);
    conn.drop();
    await nextEvent(client, 'disconnected');
    const queued = rejection(client.get('/q'));
    expect(client.stats().queued).toBe(1);
    await client.close();
    expect(await queued).toBeInstanceOf(DoozerConnectionError);
    expect(client.stats()).toEqual({ reservedTags: 0, abandoned: 0, queued: 0 });
  });

  it('watch() follows events from rev + 1, resumes after a reconnect, ends on abort and throws TOO_LATE', async () => {
    const server = await fixture((req) => {
      if (req.verb !== Verb.WAIT) return undefined;
      if (req.rev > 100n) return { errCode: Err.TOO_LATE };
      if (req.rev === 13n) return undefined; // the test answers this one by hand
      const rev = Number(req.rev) + 1;
      return { path: '/w/x', rev: BigInt(rev), value: text(`v${rev}`), flags: 4 };
    });
    const { client, conn } = await connected(server);
    const ac = new AbortController();
    const got: number[] = [];
    const watching = (async () => {
      for await (const ev of client.watch('/w/**', 1, { signal: ac.signal })) {
        got.push(ev.rev);
        if (ev.rev === 17) ac.abort();
      }
    })();
    const w13 = await conn.next();
    expect(w13.rev).toBe(13n);
    conn.drop(); // the WAIT from 13 is lost with the connection and re-issued
    const again = await server.nextConnection();
    const w13b = await again.next();
    expect(w13b.rev).toBe(13n);
    again.reply(w13b, { path: '/w/x', rev: 15n, flags: 8 });
    await watching;
    expect(got).toEqual([2, 4, 6, 8, 10, 12, 15, 17]);

    const err = await rejection(
      (async () => {
        for await (const _ of client.watch('/w/**', 500)) void _;
      })(),
    );
    expect(err).toBeInstanceOf(DoozerTooLateError);
  });

  it('treats an err_code this schema does not list as an error answer, not a success', async () => {
    const server = await fixture((req) =>
      req.verb === Verb.SET
        ? { errCode: 50 as Err, errDetail: 'newer server', rev: 9n }
        : undefined,
    );
    const { client } = await connected(server);
    const err = await rejection(client.set('/x', 0, 'v'));
    expect(err).toBeInstanceOf(DoozerError);
    expect(err).toMatchObject({ code: 'UNKNOWN_50', detail: 'newer server', verb: 'SET' });
    expect(client.state).toBe('connected');
  });

  it('stops a watch() at once when the consumer returns while a WAIT is outstanding', async () => {
    const server = await fixture();
    const { client, conn } = await connected(server);
    const it = client.watch('/quiet/**', 5);
    const first = it.next();
    const wait = await conn.next();
    expect(wait.verb).toBe(Verb.WAIT);
    // The server never answers: return() must not wait for it.
    expect(await it.return(undefined)).toEqual({ done: true, value: undefined });
    expect(await first).toEqual({ done: true, value: undefined });
    // The tag stays reserved until the server answers (there is no CANCEL).
    expect(client.stats()).toMatchObject({ reservedTags: 1, abandoned: 1 });
    conn.reply(wait, { path: '/quiet/x', rev: 6n, flags: 4 });
    await vi.waitFor(() => expect(client.stats().reservedTags).toBe(0), { timeout: 15_000 });

    // break in for-await does the same.
    const ac = new AbortController();
    const loop = (async () => {
      for await (const _ of client.watch('/quiet/**', 7, { signal: ac.signal })) break;
    })();
    const second = await conn.next();
    conn.reply(second, { path: '/quiet/y', rev: 7n, flags: 4 });
    await loop;
    expect(client.state).toBe('connected');
  });

  it('gives up a watch() after repeated undecodable answers instead of retrying forever', async () => {
    const server = await fixture((req, conn) => {
      if (req.verb !== Verb.WAIT) return undefined;
      conn.write(Buffer.from([0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff]));
      return null;
    });
    const { client } = await connected(server);
    const err = await rejection(
      (async () => {
        for await (const _ of client.watch('/bad/**', 1)) void _;
      })(),
    );
    expect(err).toBeInstanceOf(DoozerProtocolError);
    // The first WAIT and WATCH_PROTOCOL_RETRIES re-issued ones, each on a new connection.
    expect(server.all.length).toBe(1 + WATCH_PROTOCOL_RETRIES);
  });

  it('uses one abort listener for many requests sharing a signal', async () => {
    const server = await fixture();
    const { client, conn } = await connected(server);
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    defer(() => process.off('warning', onWarning));
    const ac = new AbortController();
    const gets = Array.from({ length: 50 }, (_, i) =>
      rejection(client.get(`/g/${i}`, undefined, { signal: ac.signal })),
    );
    await conn.receivedCount(50);
    const reason = new Error('enough');
    ac.abort(reason);
    for (const r of await Promise.all(gets)) expect(r).toBe(reason);
    // A signal that outlives finished requests keeps no listener for them.
    const ok = client.nop({ signal: ac.signal });
    expect(await rejection(ok)).toBe(reason);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('rejects a finite timeout too long for a timer instead of silently never firing', async () => {
    const server = await fixture();
    const { client } = await connected(server);
    const err = await rejection(client.get('/x', undefined, { timeoutMs: 2 ** 31 }));
    expect(err).toBeInstanceOf(DoozerArgumentError);
    expect((err as Error).message).toMatch(/timeoutMs must be at most 2147483647/);
    for (const option of ['connectTimeoutMs', 'requestTimeoutMs'] as const) {
      const refused = await rejection(DoozerClient.connect(server.uri(), { [option]: 2 ** 40 }));
      expect(refused).toBeInstanceOf(DoozerArgumentError);
      expect((refused as Error).message).toContain(option);
    }
  });

  it('survives a logger that throws', async () => {
    const server = await fixture((req) => (req.verb === Verb.REV ? { rev: 4n } : undefined));
    const boom = (): never => {
      throw new Error('logger broke');
    };
    const { client, conn } = await connected(server, {
      logger: { debug: boom, warn: boom, error: boom },
    });
    conn.drop();
    await nextEvent(client, 'reconnected');
    expect(await client.rev()).toBe(4);
  });

  it('connect() stops when its signal aborts, leaving nothing open', async () => {
    // The fixture never answers ACCESS, so the attempt hangs until aborted.
    const server = await fixture((req) => (req.verb === Verb.ACCESS ? null : undefined));
    const ac = new AbortController();
    const connecting = rejection(
      DoozerClient.connect(server.uri('&sk=hush'), { signal: ac.signal, connectTimeoutMs: 60_000 }),
    );
    const conn = await server.nextConnection();
    await conn.receivedCount(1);
    const reason = new Error('shutting down');
    ac.abort(reason);
    expect(await connecting).toBe(reason);
    await conn.closed;
    expect(
      await rejection(DoozerClient.connect(server.uri(), { signal: AbortSignal.abort(reason) })),
    ).toBe(reason);
  });

  it('keepalive: probes an idle connection with REV and drops it when the probe goes unanswered', async () => {
    let silent = false;
    const server = await fixture((req) =>
      silent ? null : req.verb === Verb.REV ? { rev: 1n } : undefined,
    );
    const { client, conn } = await connected(server, {
      keepalive: { intervalMs: 20, timeoutMs: 40 },
    });
    // Answered probes keep the connection.
    await conn.receivedCount(3);
    expect(conn.received.slice(0, 3).map((r) => r.verb)).toEqual([Verb.REV, Verb.REV, Verb.REV]);
    expect(client.state).toBe('connected');
    // A server that stops answering (a dead host) is given up, and the client reconnects.
    silent = true;
    const dropped = await nextEvent(client, 'disconnected', true);
    expect(dropped.reason.message).toMatch(/keepalive probe: connection presumed dead/);
    silent = false;
    await nextEvent(client, 'reconnected');
    expect(await client.rev()).toBe(1);
  });

  it('keepalive: an event loop stall longer than the probe timeout is not taken for a dead server', async () => {
    const busy = (ms: number): void => {
      const end = performance.now() + ms;
      while (performance.now() < end);
    };
    let stalls = 0;
    const server = await fixture((req) => {
      if (req.verb !== Verb.REV) return undefined;
      // Answer at once, then stall the whole process (client included) past the timeout.
      if (stalls < 3) {
        stalls++;
        setImmediate(() => busy(150));
      }
      return { rev: 2n };
    });
    const { client, conn } = await connected(server, {
      keepalive: { intervalMs: 20, timeoutMs: 40 },
    });
    const events: string[] = [];
    const sub = client.state$.subscribe((e) => events.push(e.type));
    defer(() => sub.unsubscribe());
    await conn.receivedCount(6); // three stalled probes, then more
    expect(events.filter((t) => t === 'disconnected')).toEqual([]);
    expect(server.all).toHaveLength(1);
  });

  it('reconnect() drops the connection and reconnects to the next address', async () => {
    const one = await fixture((req) =>
      req.verb === Verb.SELF ? { value: text('one') } : undefined,
    );
    const two = await fixture((req) =>
      req.verb === Verb.SELF ? { value: text('two') } : undefined,
    );
    const client = track(
      await DoozerClient.connect(`doozer:?ca=${one.address}&ca=${two.address}`, {
        startAt: 'first',
        reconnect: FAST_RECONNECT,
        keepalive: false,
      }),
    );
    expect(await client.self()).toBe('one');
    const id = client.connectionId;
    const pending = rejection(client.wait('/w', 1));
    const disconnected = nextEvent(client, 'disconnected', true);
    client.reconnect('moving on');
    const dropped = await disconnected;
    expect(dropped.reason.message).toMatch(/moving on: dropping/);
    expect(await pending).toBeInstanceOf(DoozerConnectionError);
    await nextEvent(client, 'reconnected');
    expect(client.connectionId).toBe(id + 1);
    expect(await client.self()).toBe('two');
  });

  it('keepalive options are checked by name', async () => {
    const server = await fixture();
    for (const keepalive of [{ intervalMs: -1 }, { timeoutMs: 0 }, { intervalMs: Infinity }]) {
      const err = await rejection(DoozerClient.connect(server.uri(), { keepalive }));
      expect(err).toBeInstanceOf(DoozerArgumentError);
      expect((err as Error).message).toMatch(/keepalive\.(intervalMs|timeoutMs)/);
    }
  });
});

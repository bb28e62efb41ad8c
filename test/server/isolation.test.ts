/**
 * One client's behaviour never affects another's: a flooding client that
 * does not read its answers is throttled (the server stops reading it once
 * its write buffer is large), a client that vanishes with requests in flight
 * has them freed at once, and many waiters cost a write only what matches.
 */
import { describe, expect, it } from 'vitest';
import { encodeRequest } from '../../lib/testing/index.js';
import { Verb } from '../../lib/wire/index.js';
import { connectRaw, startServer, until, within } from './helpers.js';

const { GET, SET, REV, WAIT, NOP } = Verb;

describe('isolation', () => {
  it('throttles a client that floods without reading, and still serves the others', async () => {
    const server = await startServer();
    const flooder = await connectRaw(server);
    const other = await connectRaw(server);
    await other.call({ verb: SET, path: '/big', rev: 0, value: Buffer.alloc(64 * 1024, 'x') });
    flooder.socket.pause(); // it never reads its answers
    const requests = 4000; // 4000 answers of 64 KiB: 256 MiB the server must not buffer
    const frame = encodeRequest({ tag: 1, verb: GET, path: '/big' });
    const batch = Buffer.concat(Array.from({ length: 100 }, () => frame));
    for (let i = 0; i < requests / 100; i++) flooder.socket.write(batch);
    await until(() => server.stats().queuedFrames > 0, 'the server to hold back the flood');
    const held = server.stats();
    expect(held.bufferedBytes).toBeLessThan(8 * 1024 * 1024);
    // The others are served meanwhile.
    for (let i = 0; i < 20; i++) {
      expect((await within(other.call({ verb: REV }), 10_000, 'REV')).rev).toBe(59);
    }
    expect((await other.call({ verb: SET, path: '/other', rev: 0, value: '' })).rev).toBe(60);
    expect(server.stats().bufferedBytes).toBeLessThan(8 * 1024 * 1024);
    // Once it reads again, every request is answered, in order and completely.
    let answers = 0;
    flooder.socket.removeAllListeners('data');
    const { FrameDecoder } = await import('../../lib/wire/index.js');
    const decoder = new FrameDecoder();
    flooder.socket.on('data', (chunk: Buffer) => decoder.push(chunk, () => answers++));
    flooder.socket.resume();
    await until(() => answers === requests, 'every answer', 60_000);
    expect(server.stats().queuedFrames).toBe(0);
  });

  it('frees the waits and reads of a client that disconnects with requests in flight', async () => {
    const server = await startServer();
    const leaver = await connectRaw(server);
    const stayer = await connectRaw(server);
    const stays = stayer.call({ tag: 1, verb: WAIT, path: '/shared', rev: 59 });
    for (let i = 0; i < 1000; i++) leaver.send({ verb: WAIT, path: `/w/${i}`, rev: 59 });
    leaver.send({ verb: WAIT, path: '/shared', rev: 59 });
    leaver.send({ verb: GET, path: '/shared', rev: 10_000 });
    await leaver.call({ verb: REV });
    expect(server.waiting).toBe(1003);
    await leaver.close();
    await until(() => server.waiting === 1, "the leaver's requests to be freed");
    await stayer.call({ verb: SET, path: '/shared', rev: 0, value: 'v' });
    expect(await stays).toMatchObject({ tag: 1, path: '/shared', rev: 59 });
    expect(server.waiting).toBe(0);
  });

  it('a client closing in the middle of its own pipeline does not disturb the server', async () => {
    const server = await startServer();
    const stayer = await connectRaw(server);
    for (let round = 0; round < 20; round++) {
      const c = await connectRaw(server);
      const frames = Buffer.concat(
        Array.from({ length: 200 }, (_, i) =>
          encodeRequest({ tag: i + 1, verb: i % 2 ? NOP : WAIT, path: '/x', rev: 1e6 }),
        ),
      );
      c.socket.end(frames); // half-close right behind the requests
      await c.closed;
    }
    await until(() => server.waiting === 0 && server.connections === 1, 'a clean server');
    expect((await stayer.call({ verb: REV })).rev).toBeGreaterThan(58);
  });

  it('disconnects a client that parks more than 100,000 requests, and only it', async () => {
    const warnings: string[] = [];
    const server = await startServer({ logger: { warn: (m) => warnings.push(m) } });
    const hog = await connectRaw(server);
    const other = await connectRaw(server);
    const frames = Array.from({ length: 100_001 }, (_, i) =>
      encodeRequest({ tag: i + 1, verb: WAIT, path: `/hog/${i}`, rev: 1e6 }),
    );
    hog.writeRaw(Buffer.concat(frames));
    await within(hog.closed, 30_000, 'the hog to be disconnected');
    expect(warnings).toEqual([expect.stringMatching(/more than 100000 requests waiting$/)]);
    await until(() => server.waiting === 0, 'its waits to be freed');
    expect((await other.call({ verb: REV })).rev).toBe(58);
  });

  it('closes a client that never reads once its unread answers pass maxWriteBufferBytes', async () => {
    const warnings: string[] = [];
    // 64 KiB frames: answers may pile up to 256 KiB (4 x maxFrameBytes) per connection.
    const server = await startServer({
      maxFrameBytes: 64 * 1024,
      logger: { warn: (m) => warnings.push(m) },
    });
    const sleeper = await connectRaw(server);
    const writer = await connectRaw(server);
    const bystander = await connectRaw(server);
    sleeper.socket.pause(); // it never reads
    const waits = 1000; // 1000 answers of 60 KiB: 60 MB no socket buffer holds
    sleeper.writeRaw(
      Buffer.concat(
        Array.from({ length: waits }, (_, i) =>
          encodeRequest({ tag: i + 1, verb: WAIT, path: '/big', rev: 59 }),
        ),
      ),
    );
    const seen = bystander.call({ tag: 1, verb: WAIT, path: '/big', rev: 59 });
    await until(() => server.waiting === waits + 1, 'every WAIT to be parked');
    const value = Buffer.alloc(60 * 1024, 'x');
    expect(await writer.call({ tag: 1, verb: SET, path: '/big', rev: 0, value })).toEqual({
      tag: 1,
      rev: 59,
    });
    await until(() => warnings.length > 0, 'the sleeper to be closed');
    expect(warnings).toEqual([
      expect.stringMatching(
        /^closing connection from 127\.0\.0\.1:\d+: more than 262144 bytes of answers not read$/,
      ),
    ]);
    expect(await within(seen, 10_000, "the bystander's WAIT")).toMatchObject({
      tag: 1,
      path: '/big',
      rev: 59,
      flags: 4,
    });
    await until(() => server.waiting === 0 && server.connections === 2, 'its waits to be freed');
    expect(server.stats().bufferedBytes).toBe(0);
    // Once it reads again it finds its socket closed.
    sleeper.socket.resume();
    await within(sleeper.closed, 30_000, 'the sleeper to see its socket closed');
    expect((await writer.call({ verb: GET, path: '/big' })).value).toHaveLength(60 * 1024);
  });

  it('closes the connection that parks one request past the server-wide maxWaiting', async () => {
    const warnings: string[] = [];
    const server = await startServer({ maxWaiting: 10, logger: { warn: (m) => warnings.push(m) } });
    const first = await connectRaw(server);
    const second = await connectRaw(server);
    for (let i = 0; i < 6; i++) first.send({ verb: WAIT, path: `/a/${i}`, rev: 59 });
    await first.call({ verb: REV });
    for (let i = 0; i < 4; i++) second.send({ verb: WAIT, path: `/b/${i}`, rev: 59 });
    await second.call({ verb: REV });
    expect(server.waiting).toBe(10);
    expect(first.isOpen && second.isOpen).toBe(true);
    second.send({ verb: WAIT, path: '/b/one-too-many', rev: 59 });
    await within(second.closed, 10_000, 'the second connection to be closed');
    expect(warnings).toEqual([
      expect.stringMatching(/: the server has more than 10 requests waiting$/),
    ]);
    await until(() => server.waiting === 6, "the second connection's waits to be freed");
    const answer = first.answerTo(1);
    await first.call({ verb: SET, path: '/a/0', rev: 0, value: '' });
    expect(await answer).toMatchObject({ tag: 1, path: '/a/0' });
  });

  it('answers exactly the matching WAIT among 10,000 others', async () => {
    const server = await startServer();
    const c = await connectRaw(server);
    const n = 10_000;
    for (let i = 0; i < n; i++) {
      c.send({ tag: i + 1, verb: WAIT, path: i % 2 ? `/lit/${i}` : `/glob/${i}/*`, rev: 59 });
    }
    await c.call({ tag: n + 1, verb: REV });
    expect(server.waiting).toBe(n);
    const hit = c.answerTo(5001); // tag 5001: i = 5000, the glob /glob/5000/*
    await c.call({ tag: n + 2, verb: SET, path: '/glob/5000/x', rev: 0, value: '' });
    expect(await hit).toMatchObject({ tag: 5001, path: '/glob/5000/x', rev: 59 });
    const lit = c.answerTo(6000); // tag 6000: i = 5999, the literal /lit/5999
    await c.call({ tag: n + 3, verb: SET, path: '/lit/5999', rev: 0, value: '' });
    expect(await lit).toMatchObject({ tag: 6000, path: '/lit/5999', rev: 60 });
    expect(server.waiting).toBe(n - 2);
  });
});

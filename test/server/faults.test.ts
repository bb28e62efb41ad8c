/**
 * Fault injection: pause/resume, dropConnections, stop/restart on the same
 * port (with and without state), close.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Verb } from '../../lib/wire/index.js';
import { connectRaw, startServer, until, within } from './helpers.js';

const { GET, SET, REV, WAIT, SELF } = Verb;

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

describe('pause / resume', () => {
  it('keeps sockets open, answers nothing while paused, then everything in order', async () => {
    const server = await startServer();
    const c = await connectRaw(server);
    await c.call({ verb: SET, path: '/p', rev: 0, value: 'before' });
    server.pause();
    expect(server.paused).toBe(true);
    const answers = [
      c.call({ tag: 10, verb: SET, path: '/p', rev: -1, value: 'one' }),
      c.call({ tag: 11, verb: GET, path: '/p' }),
      c.call({ tag: 12, verb: SET, path: '/p', rev: -1, value: 'two' }),
      c.call({ tag: 13, verb: GET, path: '/p' }),
    ];
    // A connection accepted while paused is held as well (it is not even read).
    const late = await connectRaw(server);
    const lateRev = late.call({ tag: 1, verb: REV });
    await until(() => server.stats().queuedFrames === 4, 'the requests to reach the server');
    let answered = 0;
    for (const a of [...answers, lateRev]) void a.then(() => answered++);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(answered).toBe(0);
    await until(() => server.connections === 2, 'the late connection to be accepted');
    expect(c.isOpen && late.isOpen).toBe(true);
    expect(server.rev).toBe(59);

    server.resume();
    expect(await Promise.all(answers)).toEqual([
      { tag: 10, rev: 60 },
      { tag: 11, rev: 60, value: 'one' },
      { tag: 12, rev: 61 },
      { tag: 13, rev: 61, value: 'two' },
    ]);
    expect((await lateRev).rev).toBe(61);
    expect(server.stats().requests).toBe(6);
  });

  it('a WAIT outstanding across a pause is answered after resume', async () => {
    const server = await startServer();
    const waiter = await connectRaw(server);
    const writer = await connectRaw(server);
    const event = waiter.call({ tag: 1, verb: WAIT, path: '/x', rev: 59 });
    await waiter.call({ verb: REV }); // the WAIT is registered
    server.pause();
    writer.send({ verb: SET, path: '/x', rev: 0, value: 'v' });
    await until(() => server.stats().queuedFrames === 1, 'the SET to be held');
    server.resume();
    expect(await event).toEqual({ tag: 1, path: '/x', rev: 59, value: 'v', flags: 4 });
  });
});

describe('dropConnections', () => {
  it('destroys every client socket, frees their waits, keeps listening', async () => {
    const server = await startServer();
    const a = await connectRaw(server);
    const b = await connectRaw(server);
    a.send({ verb: WAIT, path: '/never', rev: 59 });
    a.send({ verb: GET, path: '/x', rev: 1_000_000 });
    await a.call({ verb: REV });
    expect(server.waiting).toBe(2);
    server.dropConnections();
    await within(Promise.all([a.closed, b.closed]), 10_000, 'both sockets to close');
    expect(server.waiting).toBe(0);
    await until(() => server.connections === 0, 'no connections');
    const c = await connectRaw(server);
    expect((await c.call({ verb: REV })).rev).toBe(58);
  });
});

describe('stop / restart', () => {
  it('stop closes the port; restart({ keepState: true }) comes back on it with the same store', async () => {
    const server = await startServer();
    const port = server.port;
    const c = await connectRaw(server);
    const node = server.nodeId;
    await c.call({ verb: SET, path: '/kept', rev: 0, value: 'yes' });
    const waiting = c.call({ verb: WAIT, path: '/nothing', rev: 60 });
    await c.call({ verb: REV });
    await server.stop();
    await within(c.closed, 10_000, 'the client socket to close');
    expect(await refused(port)).toBe(true);
    expect(server.waiting).toBe(0);
    expect(
      await Promise.race([waiting.then(() => 'answered'), Promise.resolve('not answered')]),
    ).toBe('not answered');

    await server.restart({ keepState: true });
    expect(server.port).toBe(port);
    const d = await connectRaw(server);
    expect(await d.call({ tag: 1, verb: GET, path: '/kept' })).toEqual({
      tag: 1,
      rev: 59,
      value: 'yes',
    });
    expect((await d.call({ verb: SELF })).value).toBe(node);
    expect(server.rev).toBe(59);
  });

  it('restart() without state is a new node: fresh store at rev 58, new id, same address', async () => {
    const server = await startServer();
    const port = server.port;
    const c = await connectRaw(server);
    const old = server.nodeId;
    for (let i = 0; i < 10; i++) await c.call({ verb: SET, path: `/f${i}`, rev: 0, value: '' });
    await server.restart();
    await within(c.closed, 10_000, 'the old connection to close');
    const d = await connectRaw(server);
    expect(server.port).toBe(port);
    expect(server.rev).toBe(58);
    expect(server.nodeId).not.toBe(old);
    expect(await d.call({ tag: 1, verb: GET, path: '/f0' })).toEqual({ tag: 1, rev: 0, value: '' });
    const ns = await d.call({ verb: GET, path: `/ctl/ns/local/${server.nodeId}` });
    expect(ns.value).toBe(`127.0.0.1:${port}`);
  });

  it.each([true, false])(
    'restart({ keepState: %s }) ends a pause: the node answers and heartbeats again',
    async (keepState) => {
      const server = await startServer({ heartbeatMs: 20, nodeId: 'P' });
      server.pause();
      await server.restart({ keepState });
      expect(server.paused).toBe(false);
      const c = await connectRaw(server);
      const rev = (await within(c.call({ verb: REV }), 10_000, 'REV')).rev!;
      const beat = c.call({ verb: WAIT, path: '/ctl/node/P/applied', rev: rev + 1 });
      expect(await within(beat, 10_000, 'a heartbeat')).toMatchObject({ rev: rev + 1, flags: 4 });
    },
  );

  it('stop() ends a pause too', async () => {
    const server = await startServer();
    server.pause();
    await server.stop();
    expect(server.paused).toBe(false);
    await server.restart({ keepState: true });
    const c = await connectRaw(server);
    expect((await within(c.call({ verb: REV }), 10_000, 'REV')).rev).toBe(58);
  });

  it.each([true, false])(
    'close() during restart({ keepState: %s }) leaves no listener behind',
    async (keepState) => {
      const server = await startServer({ heartbeatMs: 10 });
      const port = server.port;
      const restarted = server.restart({ keepState });
      await server.close();
      await restarted;
      expect(await refused(port)).toBe(true);
      expect(server.connections).toBe(0);
      await expect(server.restart()).rejects.toThrow(/closed/);
    },
  );

  it('stop() during restart() waits for it, then stops', async () => {
    const server = await startServer();
    const restarted = server.restart();
    await server.stop();
    await restarted;
    expect(await refused(server.port)).toBe(true);
    await server.restart({ keepState: true });
    const c = await connectRaw(server);
    expect((await c.call({ verb: REV })).rev).toBe(58);
  });

  it('restart() keeps a given nodeId', async () => {
    const server = await startServer({ nodeId: 'FIXED' });
    await server.restart({ keepState: false });
    expect(server.nodeId).toBe('FIXED');
  });
});

describe('close', () => {
  it('is idempotent and frees the port, sockets and waits', async () => {
    const server = await startServer({ heartbeatMs: 10 });
    const c = await connectRaw(server);
    c.send({ verb: WAIT, path: '/x', rev: 1000 });
    await c.call({ verb: REV });
    await Promise.all([server.close(), server.close()]);
    await server.close();
    await within(c.closed, 10_000, 'the socket to close');
    expect(await refused(server.port)).toBe(true);
    expect(server.waiting).toBe(0);
    expect(server.connections).toBe(0);
    await expect(server.restart()).rejects.toThrow(/closed/);
  });

  it('withDoozerServer closes the server whether the test body succeeds or throws', async () => {
    const { withDoozerServer } = await import('../../lib/testing/index.js');
    let port = 0;
    const rev = await withDoozerServer(
      (s) => {
        port = s.port;
        return Promise.resolve(s.rev);
      },
      { heartbeatMs: 0 },
    );
    expect(rev).toBe(58);
    expect(await refused(port)).toBe(true);
    await expect(
      withDoozerServer((s) => {
        port = s.port;
        return Promise.reject(new Error('boom'));
      }),
    ).rejects.toThrow('boom');
    expect(await refused(port)).toBe(true);
  });

  it('rejects bad options', async () => {
    const { DoozerServer } = await import('../../lib/testing/index.js');
    await expect(DoozerServer.start({ history: -1 })).rejects.toThrow(RangeError);
    await expect(DoozerServer.start({ clusterName: 'a/b' })).rejects.toThrow(/clusterName/);
    await expect(DoozerServer.start({ nodeId: '' })).rejects.toThrow(/nodeId/);
    await expect(DoozerServer.start({ port: 70000 })).rejects.toThrow(/port/);
    await expect(DoozerServer.start({ maxWriteBufferBytes: 0 })).rejects.toThrow(
      /maxWriteBufferBytes/,
    );
    await expect(DoozerServer.start({ maxWaiting: 1.5 })).rejects.toThrow(/maxWaiting/);
    await expect(DoozerServer.start({ advertiseHost: '[::1]' })).rejects.toThrow(/advertiseHost/);
  });
});

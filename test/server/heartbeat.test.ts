/**
 * The heartbeat: the node writes /ctl/node/<id>/applied (the rev before the
 * write) about once a period, so clients never see consecutive revs. Only
 * setInterval is faked here, to count periods exactly; sockets are real.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Verb } from '../../lib/wire/index.js';
import { connectRaw, startServer } from './helpers.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('heartbeat', () => {
  it('writes /ctl/node/<id>/applied once a period, unconditionally', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const server = await startServer({ heartbeatMs: 1000, nodeId: 'HB' });
    const c = await connectRaw(server);
    expect(server.rev).toBe(58);
    const next = c.call({ tag: 1, verb: Verb.WAIT, path: '/ctl/node/HB/applied', rev: 59 });
    await c.call({ verb: Verb.SET, path: '/mine', rev: 0, value: '' }); // 59
    vi.advanceTimersByTime(999);
    expect(server.rev).toBe(59);
    vi.advanceTimersByTime(1);
    expect(server.rev).toBe(60);
    expect(await next).toEqual({
      tag: 1,
      path: '/ctl/node/HB/applied',
      rev: 60,
      value: '59',
      flags: 4,
    });
    vi.advanceTimersByTime(3000);
    expect(server.rev).toBe(63);
    expect((await c.call({ tag: 2, verb: Verb.GET, path: '/ctl/node/HB/applied' })).value).toBe(
      '62',
    );
  });

  it('uses the default period of 1000 ms', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const { DoozerServer } = await import('../../lib/testing/index.js');
    const server = await DoozerServer.start();
    try {
      vi.advanceTimersByTime(1000);
      expect(server.rev).toBe(59);
    } finally {
      await server.close();
    }
  });

  it.each([0, false] as const)('heartbeatMs %s turns it off', async (heartbeatMs) => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const server = await startServer({ heartbeatMs });
    vi.advanceTimersByTime(60_000);
    expect(server.rev).toBe(58);
  });

  it('stops while paused and resumes after', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const server = await startServer({ heartbeatMs: 100 });
    vi.advanceTimersByTime(100);
    expect(server.rev).toBe(59);
    server.pause();
    vi.advanceTimersByTime(1000);
    expect(server.rev).toBe(59);
    server.resume();
    vi.advanceTimersByTime(100);
    expect(server.rev).toBe(60);
  });

  it('stops with stop() and restarts with restart()', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const server = await startServer({ heartbeatMs: 100 });
    await server.stop();
    vi.advanceTimersByTime(1000);
    expect(server.rev).toBe(58);
    await server.restart({ keepState: true });
    vi.advanceTimersByTime(100);
    expect(server.rev).toBe(59);
    await server.close();
    vi.advanceTimersByTime(1000);
    expect(server.rev).toBe(59);
  });

  it('leaves no heartbeat behind when close() comes during restart()', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const server = await startServer({ heartbeatMs: 100 });
    const restarted = server.restart({ keepState: true });
    await server.close();
    await restarted;
    vi.advanceTimersByTime(1000);
    expect(server.rev).toBe(58);
  });
});

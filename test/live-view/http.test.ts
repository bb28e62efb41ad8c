/**
 * The live view over HTTP, without a browser: what it serves and with which
 * headers, that it is read-only, the event stream, and its bounds.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { LiveView } from '../../lib/live-view/index.js';
import { waitFor } from '../support/wait.js';
import { fetchText, SseReader, startStack } from './helpers.js';

describe('live view over HTTP', () => {
  it('serves the page, its stylesheet and script, with a strict CSP, and the state as JSON', async () => {
    const { view } = await startStack();
    expect(view.url).toBe(`http://127.0.0.1:${view.port}/`);
    const page = await fetchText(view.url);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toMatch(/^default-src 'self'(;|$)/);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.body).toContain('<script src="live-view.js" defer></script>');
    expect(page.body).not.toMatch(/<script>|<style>|\sstyle=|\son[a-z]+=|https?:\/\//);
    for (const [path, type] of [
      ['live-view.css', 'text/css; charset=utf-8'],
      ['live-view.js', 'text/javascript; charset=utf-8'],
    ] as const) {
      const a = await fetchText(new URL(path, view.url).href);
      expect([a.status, a.headers['content-type']]).toEqual([200, type]);
      expect(a.headers['content-security-policy']).toMatch(/^default-src 'self'/);
      expect(a.body).not.toMatch(/https?:\/\/|innerHTML|outerHTML|insertAdjacentHTML|eval\(/);
    }
    const state = JSON.parse((await fetchText(new URL('state', view.url).href)).body) as {
      rev: number;
      tree: { files: { path: string }[] };
    };
    expect(state.rev).toBeGreaterThanOrEqual(58);
    expect(state.tree.files.map((f) => f.path)).toContain('/ctl/name');
    expect((await fetchText(new URL('nope', view.url).href)).status).toBe(404);
  });

  it('is read-only: GET and HEAD only, anything else is 405', async () => {
    const { view } = await startStack();
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      for (const path of ['', 'events', 'state']) {
        const a = await fetchText(new URL(path, view.url).href, { method });
        expect([method, path, a.status, a.headers.allow]).toEqual([method, path, 405, 'GET, HEAD']);
        expect(a.headers['content-security-policy']).toMatch(/^default-src 'self'/);
      }
    }
    const head = await fetchText(view.url, { method: 'HEAD' });
    expect([head.status, head.body, Number(head.headers['content-length'])]).toEqual([
      200,
      '',
      Buffer.byteLength((await fetchText(view.url)).body),
    ]);
  });

  it('bound to loopback, answers only requests naming a loopback host (no DNS rebinding)', async () => {
    const { view } = await startStack();
    const evil = await fetchText(view.url, { headers: { host: `evil.example:${view.port}` } });
    expect(evil.status).toBe(403);
    for (const host of [`localhost:${view.port}`, `127.0.0.1:${view.port}`, `[::1]:${view.port}`]) {
      expect((await fetchText(view.url, { headers: { host } })).status).toBe(200);
    }
  });

  it('streams a snapshot, then the changes of the store', async () => {
    const { view, client } = await startStack();
    const sse = await SseReader.open(view.url);
    expect(sse.res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(sse.res.headers['content-security-policy']).toMatch(/^default-src 'self'/);
    const snap = await sse.snapshot();
    expect(snap.connected).toBe(true);
    expect(snap.tree.files.some((f) => f.path === '/ctl/name' && f.text === 'local')).toBe(true);

    const rev = await client.set('/app/greeting', 0, 'hello');
    const set = await sse.update((u) => u.files.some((f) => f.path === '/app/greeting'), 'the set');
    expect(set.files.find((f) => f.path === '/app/greeting')!.file).toEqual({
      path: '/app/greeting',
      rev,
      size: 5,
      text: 'hello',
    });
    expect(set.rev).toBeGreaterThanOrEqual(rev);
    await client.del('/app/greeting', rev);
    await sse.update(
      (u) => u.files.some((f) => f.path === '/app/greeting' && f.file === null),
      'the delete',
    );
  });

  it('sends heartbeats, and drops a stream whose client went away', async () => {
    const { view } = await startStack({ heartbeatMs: 20 });
    const sse = await SseReader.open(view.url);
    await sse.snapshot();
    await waitFor(() => sse.comments >= 2, 'two heartbeats');
    expect(view.stats().clients).toBe(1);
    sse.close();
    await waitFor(() => view.stats().clients === 0, 'the stream to be dropped');
  });

  it('drops a stream that does not read, once its unread answers pass maxBufferedBytes', async () => {
    const { view, client } = await startStack({
      maxBufferedBytes: 64 * 1024,
      maxValueBytes: 64 * 1024,
    });
    // A client that asks for the stream and never reads a byte.
    const socket = connect(view.port, '127.0.0.1');
    socket.pause();
    socket.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1:${view.port}\r\n\r\n`);
    await waitFor(() => view.stats().clients === 1, 'the stream to open');
    const big = 'x'.repeat(60 * 1024);
    for (let i = 0; view.stats().clients === 1; i++) {
      if (i > 2000) throw new Error('the stream was never dropped');
      await client.set(`/big/${i % 50}`, -1, big);
      await new Promise((r) => setTimeout(r, 12)); // one flush per set
    }
    expect(view.stats().droppedClients).toBe(1);
    socket.destroy();
  });

  it('serves at most maxClients streams; more answer 503 until one closes', async () => {
    const { view } = await startStack({ maxClients: 2 });
    const a = await SseReader.open(view.url);
    const b = await SseReader.open(view.url);
    await Promise.all([a.snapshot(), b.snapshot()]);
    const refused = await fetchText(new URL('events', view.url).href);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    expect(refused.body).toMatch(/at most 2/);
    expect((await fetchText(view.url)).status).toBe(200); // the page itself still loads
    a.close();
    await waitFor(() => view.stats().clients === 1, 'a stream to close');
    const c = await SseReader.open(view.url);
    expect(c.res.statusCode).toBe(200);
    await c.snapshot();
  });

  it('shows a value larger than maxValueBytes as its size, and at most maxFiles files', async () => {
    const { view, client } = await startStack({ maxValueBytes: 16, maxFiles: 12 });
    await client.set('/a/small', 0, 'sixteen bytes ok');
    await client.set('/a/large', 0, 'seventeen bytes!!');
    await client.set('/a/binary', 0, new Uint8Array([0xff, 0x41]));
    const sse = await SseReader.open(view.url);
    const files = (await sse.snapshot()).tree.files;
    expect(files.find((f) => f.path === '/a/small')).toMatchObject({
      size: 16,
      text: 'sixteen bytes ok',
    });
    const large = files.find((f) => f.path === '/a/large')!;
    expect([large.size, 'text' in large]).toEqual([17, false]);
    expect(files.find((f) => f.path === '/a/binary')).toMatchObject({
      size: 2,
      binary: true,
      text: '\ufffdA',
    });
    // A fresh node has 8 files; with these 3 that is 11: one more fits, the next does not.
    await client.set('/b/1', 0, '1');
    await client.set('/b/2', 0, '2');
    await sse.update((u) => u.treeTruncated, 'the tree to be truncated');
    expect(view.stats().files).toBe(12);
    expect(view.snapshot().tree.files.map((f) => f.path)).toContain('/b/1');
    expect(view.snapshot().tree.files.map((f) => f.path)).not.toContain('/b/2');
  });

  it('warns when bound to a wildcard address', async () => {
    const { server } = await startStack();
    const warnings: string[] = [];
    const view = await LiveView.start({
      uri: server.uri,
      host: '0.0.0.0',
      logger: { warn: (m) => warnings.push(m) },
    });
    try {
      expect(view.host).toBe('0.0.0.0');
      expect(view.url).toBe(`http://127.0.0.1:${view.port}/`);
      expect(warnings).toEqual([
        expect.stringMatching(/^live view: listening on the wildcard address 0\.0\.0\.0: /),
      ]);
      // Not bound to loopback, it does not judge the Host.
      expect((await fetchText(view.url, { headers: { host: 'devbox.example' } })).status).toBe(200);
    } finally {
      await view.close();
    }
  });

  it('names a bad option, and fails to start when the address is taken', async () => {
    const { server, view } = await startStack();
    await expect(LiveView.start({ uri: server.uri, maxClients: 0 })).rejects.toThrow(
      /live view option maxClients must be an integer >= 1, got 0/,
    );
    await expect(LiveView.start({ uri: server.uri, port: view.port })).rejects.toThrow(
      /EADDRINUSE/,
    );
  });
});

/**
 * Memory held by answers that are not read: a large value fanned out to
 * many WAITs is held once, not once per waiter, and past the server-wide
 * `maxTotalWriteBufferBytes` the connection with the most unwritten answers
 * is closed (one `warn` line) while the others keep being served.
 */
import { fromBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { DoozerServer, encodeRequest, type RawDoozerConnection } from '../../lib/testing/index.js';
import { FrameDecoder, ResponseSchema, Verb } from '../../lib/wire/index.js';
import { connectRaw, startServer, until, within } from './helpers.js';

const { SET, WAIT, REV } = Verb;
const MiB = 1024 * 1024;

/** A connection that never reads, with `waits` WAITs parked (paths from `path(i)`). */
async function sleeper(
  server: DoozerServer,
  waits: number,
  path: (i: number) => string,
): Promise<RawDoozerConnection> {
  const c = await connectRaw(server);
  c.socket.pause();
  c.writeRaw(
    Buffer.concat(
      Array.from({ length: waits }, (_, i) =>
        encodeRequest({ tag: i + 1, verb: WAIT, path: path(i), rev: server.rev + 1 }),
      ),
    ),
  );
  return c;
}

/** Reads what `c` was sent from now on, and resolves with the answers' values once `n` came. */
function readAnswers(c: RawDoozerConnection, n: number): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const values: Buffer[] = [];
    const decoder = new FrameDecoder(0xffffffff);
    c.socket.removeAllListeners('data');
    c.socket.on('data', (chunk: Buffer) =>
      decoder.push(chunk, (payload) => {
        values.push(Buffer.from(fromBinary(ResponseSchema, payload).value));
        if (values.length === n) resolve(values);
      }),
    );
    c.socket.resume();
  });
}

describe('answers not read', () => {
  it('hold a value fanned out to many WAITs once, not once per waiter', async () => {
    const server = await startServer();
    const holders = await Promise.all(
      Array.from({ length: 10 }, () => sleeper(server, 3, () => '/fan/big')),
    );
    const writer = await connectRaw(server);
    await until(() => server.waiting === 30, 'every WAIT to be parked');
    const value = Buffer.alloc(16 * MiB - 1024);
    for (let i = 0; i < value.length; i += 4096) value.writeUInt32BE(i, i);
    expect((await writer.call({ verb: SET, path: '/fan/big', rev: -1, value })).rev).toBe(59);
    await until(() => server.waiting === 0, 'every WAIT to be answered and written');
    const stats = server.stats();
    // 30 answers of 16 MiB are written, most of them still in the sockets' buffers...
    expect(stats.bufferedBytes).toBeGreaterThan(10 * value.length);
    // ...yet they hold one copy of the value, plus a few bytes each.
    expect(stats.heldAnswerBytes).toBeLessThan(value.length + 64 * 1024);
    expect(stats.heldAnswerBytes).toBeGreaterThanOrEqual(value.length);
    // Every answer arrives whole, byte for byte, once its reader reads.
    for (const got of await readAnswers(holders[0]!, 3)) expect(got.equals(value)).toBe(true);
    for (const h of holders.slice(1)) await h.close();
    await until(() => server.stats().heldAnswerBytes === 0, 'the value to be let go');
  });

  it('past maxTotalWriteBufferBytes, close the slowest reader and only it', async () => {
    const warnings: string[] = [];
    const server = await startServer({
      maxTotalWriteBufferBytes: 8 * MiB,
      logger: { warn: (m) => warnings.push(m) },
    });
    // The kernel takes tens of MB for a reader that does not read (Linux
    // autotunes loopback buffers up to tcp_rmem's maximum) before anything is
    // held unwritten: 1000 answers of 64 KiB (65 MB) are more than it takes.
    const slow = await sleeper(server, 1000, (i) => `/slow/${i}`);
    const slower = await sleeper(server, 20, (i) => `/slower/${i}`); // fewer answers unread
    const reader = await connectRaw(server);
    const writer = await connectRaw(server);
    await until(() => server.waiting === 1020, 'every WAIT to be parked');
    const seen = reader.call({ tag: 1, verb: WAIT, path: '/reader', rev: server.rev + 1 });
    // Distinct 64 KiB values, so nothing is shared: 1.3 MB for one, 65 MB for the other.
    const set = (path: string, i: number) =>
      writer.send({ verb: SET, path, rev: -1, value: Buffer.alloc(64 * 1024, i) });
    for (let i = 0; i < 20; i++) set(`/slower/${i}`, i);
    for (let i = 0; i < 1000; i++) set(`/slow/${i}`, i);
    await writer.call({ verb: REV });
    await until(() => warnings.length > 0, 'the slowest reader to be closed', 30_000);
    expect(warnings).toEqual([
      expect.stringMatching(
        /^closing connection from 127\.0\.0\.1:\d+: the server holds more than 8388608 bytes of unread answers \(maxTotalWriteBufferBytes\), the most of them for this connection \(\d+ bytes\)$/,
      ),
    ]);
    expect(server.stats().heldAnswerBytes).toBeLessThanOrEqual(8 * MiB);
    // The others are served: the reader at once, the other sleeper once it reads.
    await writer.call({ verb: SET, path: '/reader', rev: -1, value: 'r' });
    expect(await within(seen, 10_000, "the reader's WAIT")).toMatchObject({ path: '/reader' });
    const got = await within(readAnswers(slower, 20), 30_000, "the other sleeper's answers");
    expect(got.map((v) => v[0])).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(slower.isOpen).toBe(true);
    await until(() => server.stats().heldAnswerBytes === 0, 'nothing held');
    expect(warnings).toHaveLength(1);
    // The closed one finds its socket closed once it reads again.
    slow.socket.resume();
    await within(slow.closed, 30_000, 'the slowest reader to see its socket closed');
  });

  it('rejects a maxTotalWriteBufferBytes that is not a positive integer', async () => {
    await expect(DoozerServer.start({ maxTotalWriteBufferBytes: 0 })).rejects.toThrow(
      /^maxTotalWriteBufferBytes must be a positive integer, got 0$/,
    );
  });
});

/**
 * Path limits and the look at a frame before decoding it: a path or glob
 * past `maxPathBytes` / `maxPathDepth` is answered BAD_PATH whatever the
 * verb (nothing stored, no rev consumed, the connection stays usable), and a
 * frame with more fields than a Request has closes only its connection.
 */
import { describe, expect, it } from 'vitest';
import { DoozerServer } from '../../lib/testing/index.js';
import { encodeFrame, Verb } from '../../lib/wire/index.js';
import { connectRaw, startServer, until, within } from './helpers.js';

const { GET, SET, DEL, WAIT, STAT, GETDIR, WALK, REV, NOP } = Verb;

describe('path limits', () => {
  it('answers a 3,000,000-component (6 MB) SET with BAD_PATH, stores nothing, and keeps serving', async () => {
    const server = await startServer();
    const attacker = await connectRaw(server);
    const other = await connectRaw(server);
    const before = server.stats();
    const path = '/a'.repeat(3_000_000);
    for (let i = 0; i < 3; i++) {
      expect(await attacker.call({ tag: 5, verb: SET, path, rev: -1, value: 'x' })).toEqual({
        tag: 5,
        err: 'BAD_PATH',
        detail: 'path of 6000000 bytes exceeds maxPathBytes (4096)',
      });
    }
    expect(server.stats()).toMatchObject({ rev: 58, files: before.files });
    // The same connection and the others are served as before.
    expect(await attacker.call({ tag: 6, verb: SET, path: '/ok', rev: 0, value: 'v' })).toEqual({
      tag: 6,
      rev: 59,
    });
    expect((await other.call({ verb: GET, path: '/ok' })).value).toBe('v');
  });

  it('holds every verb that takes a path or glob to the limits, with the tag echoed', async () => {
    const server = await startServer();
    const c = await connectRaw(server);
    const long = `/${'x'.repeat(4096)}`;
    const deep = '/d'.repeat(65);
    const requests = [
      { verb: GET, path: long },
      { verb: SET, path: long, rev: -1, value: 'v' },
      { verb: DEL, path: long, rev: -1 },
      { verb: WAIT, path: long, rev: 1 },
      { verb: STAT, path: long },
      { verb: GETDIR, path: long, offset: 0 },
      { verb: WALK, path: long, offset: 0 },
      { verb: GET, path: deep },
      { verb: SET, path: deep, rev: -1, value: 'v' },
      { verb: WAIT, path: `${deep}/**`, rev: 1 },
      { verb: WALK, path: '/*'.repeat(65), offset: 0 },
      { verb: REV, path: long }, // a verb that ignores the path is held to it too
    ];
    for (const [i, req] of requests.entries()) {
      const answer = await c.call({ tag: i + 1, ...req });
      expect(answer.tag).toBe(i + 1);
      expect(answer.err, `${Verb[req.verb]} ${req.path.slice(0, 10)}...`).toBe('BAD_PATH');
      expect(answer.detail).toMatch(
        req.path.length > 4096
          ? /^path of 4097 bytes exceeds maxPathBytes \(4096\)$/
          : /^path of \d+ components exceeds maxPathDepth \(64\)$/,
      );
    }
    expect(server.rev).toBe(58);
    expect(server.waiting).toBe(0);
    // Right at the limits is fine.
    const longest = `/${'y'.repeat(4095)}`;
    const deepest = '/e'.repeat(64);
    expect((await c.call({ verb: SET, path: longest, rev: 0, value: 'v' })).rev).toBe(59);
    expect((await c.call({ verb: SET, path: deepest, rev: 0, value: 'w' })).rev).toBe(60);
    expect((await c.call({ verb: GET, path: deepest })).value).toBe('w');
  });

  it('answers a tagless request over the limit without a tag, before any access check', async () => {
    const server = await startServer({ rwSecret: 'rw', roSecret: 'ro' });
    const c = await connectRaw(server);
    c.send({ tag: null, verb: GET, path: `/${'z'.repeat(5000)}` });
    expect(await within(c.next(), 10_000, 'the answer')).toEqual({
      err: 'BAD_PATH',
      detail: 'path of 5001 bytes exceeds maxPathBytes (4096)',
    });
    expect(await c.call({ tag: 2, verb: GET, path: '/ctl/name' })).toMatchObject({
      err: 'OTHER',
      detail: 'permission denied',
    });
  });

  it('applies maxPathBytes and maxPathDepth as given', async () => {
    const server = await startServer({ maxPathBytes: 100, maxPathDepth: 5 });
    const c = await connectRaw(server);
    const at100 = `/${'p'.repeat(99)}`;
    expect((await c.call({ verb: SET, path: at100, rev: 0, value: '' })).rev).toBe(59);
    expect(await c.call({ tag: 1, verb: GET, path: `${at100}q` })).toEqual({
      tag: 1,
      err: 'BAD_PATH',
      detail: 'path of 101 bytes exceeds maxPathBytes (100)',
    });
    expect((await c.call({ verb: SET, path: '/1/2/3/4/5', rev: 0, value: '' })).rev).toBe(60);
    expect(await c.call({ tag: 2, verb: STAT, path: '/1/2/3/4/5/6' })).toEqual({
      tag: 2,
      err: 'BAD_PATH',
      detail: 'path of 6 components exceeds maxPathDepth (5)',
    });
  });

  it('refuses limits that would hide the node its own /ctl files', async () => {
    await expect(DoozerServer.start({ maxPathDepth: 3 })).rejects.toThrow(
      /^maxPathDepth must be at least 4 \(\/ctl\/node\/<id>\/addr\), got 3$/,
    );
    await expect(
      DoozerServer.start({ maxPathBytes: 30, clusterName: 'a-rather-long-cluster-name' }),
    ).rejects.toThrow(/^maxPathBytes must be at least 51 \(the longest \/ctl path .*got 30$/);
    await expect(DoozerServer.start({ maxPathBytes: 0 })).rejects.toThrow(
      /^maxPathBytes must be a positive integer, got 0$/,
    );
  });
});

/** Protobuf bytes of `count` copies of one field. */
function repeated(field: number[], count: number): Buffer {
  return Buffer.alloc(field.length * count, Buffer.from(field));
}

describe('frames with more fields than a Request has', () => {
  it('closes the connection of a 16 MiB frame of unknown fields at once, and only it', async () => {
    const warnings: string[] = [];
    const server = await startServer({ logger: { warn: (m) => warnings.push(m) } });
    const attacker = await connectRaw(server);
    const other = await connectRaw(server);
    // 8 Mi copies of field 15 (varint 0): 5 s and 1.3 GiB for the protobuf decoder.
    attacker.writeRaw(encodeFrame(repeated([0x78, 0x00], 8 * 1024 * 1024), 0xffffffff));
    await within(attacker.closed, 30_000, 'the attacker to be closed');
    await until(() => warnings.length > 0, 'the log line');
    expect(warnings).toEqual([
      expect.stringMatching(
        /^closing connection from 127\.0\.0\.1:\d+: request of 16777216 bytes has more than 64 fields$/,
      ),
    ]);
    expect((await other.call({ verb: REV })).rev).toBe(58);
  });

  it('counts the fields inside groups, and repeated known fields', async () => {
    const warnings: string[] = [];
    const server = await startServer({ logger: { warn: (m) => warnings.push(m) } });
    const groups = await connectRaw(server);
    // Field 15 as a group (start 0x7b, end 0x7c) holding 100 varint fields.
    const group = Buffer.concat([Buffer.of(0x7b), repeated([0x08, 0x01], 100), Buffer.of(0x7c)]);
    groups.writeRaw(encodeFrame(group));
    await within(groups.closed, 10_000, 'the connection to be closed');
    const tags = await connectRaw(server);
    tags.writeRaw(encodeFrame(repeated([0x08, 0x01], 65))); // 65 tag fields
    await within(tags.closed, 10_000, 'the connection to be closed');
    expect(warnings).toHaveLength(2);
    expect(warnings.every((w) => w.endsWith('has more than 64 fields'))).toBe(true);
  });

  it('serves a request with a few unknown or repeated fields as usual', async () => {
    const server = await startServer();
    const c = await connectRaw(server);
    // tag 1, tag 9 (last wins), verb NOP, field 15 = 0, field 30 = 'junk', verb REV (last wins).
    const payload = Buffer.from([
      0x08,
      0x01,
      0x08,
      0x09,
      0x10,
      NOP,
      0x78,
      0x00,
      0xf2,
      0x01,
      0x04,
      0x6a,
      0x75,
      0x6e,
      0x6b,
      0x10,
      REV,
    ]);
    c.writeRaw(encodeFrame(payload));
    expect(await within(c.answerTo(9), 10_000, 'the answer')).toEqual({ tag: 9, rev: 58 });
  });
});

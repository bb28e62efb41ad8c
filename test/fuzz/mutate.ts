/**
 * Frames for the fuzz tests: plausible Requests and Responses built from a
 * seeded {@link Dice}, and the ways a byte stream can go wrong (bit flips,
 * cuts, insertions, lying length prefixes, frames glued to garbage).
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { encodeRequest, type RawRequest } from '../../lib/testing/index.js';
import { encodeFrame, Err, ResponseSchema, Verb } from '../../lib/wire/index.js';
import type { Dice } from '../support/random.js';

const VERBS: (Verb | number | undefined)[] = [
  ...Object.values(Verb).filter((v): v is Verb => typeof v === 'number'),
  undefined,
  0,
  4,
  42,
  -1,
];
const PATHS = [
  '/',
  '/a',
  '/a/b',
  '/f/x',
  '/ctl/name',
  '/ctl/err',
  '/**',
  '/a/*',
  '/?',
  '',
  'no-slash',
  '/a/',
  '/a//b',
  '/a b',
  '/é',
  '/[',
  `/${'x'.repeat(5000)}`,
  '/d'.repeat(70),
];
const REVS = [-3, -2, -1, 0, 1, 2, 57, 58, 59, 60, 1_000_000, 2n ** 62n, -(2n ** 62n)];

/** A request a client might send, or a broken one. */
export function randomRequest(d: Dice): RawRequest {
  const req: RawRequest = {};
  req.tag = d.chance(0.1) ? null : d.pick([1, 2, 7, 0, -1, 0x7fffffff, d.int(0, 1000)]);
  const verb = d.pick(VERBS);
  if (verb !== undefined) req.verb = verb;
  if (d.chance(0.9)) req.path = d.pick(PATHS);
  if (d.chance(0.5)) req.value = d.chance(0.05) ? d.bytes(6000) : d.bytes(d.int(0, 40));
  if (d.chance(0.7)) req.rev = d.pick(REVS);
  if (d.chance(0.4)) req.offset = d.pick([-1, 0, 1, 3, 100]);
  if (d.chance(0.05)) req.otherTag = d.int(0, 10);
  return req;
}

/** A response a server might send for `tag`, or a strange one. */
export function randomResponse(d: Dice, tag: number | undefined): Buffer {
  const res = create(ResponseSchema);
  if (tag !== undefined) res.tag = tag;
  if (d.chance(0.5)) res.rev = d.pick([0n, 1n, 58n, -2n, -1n, 2n ** 60n, -(2n ** 63n)]);
  if (d.chance(0.4)) res.value = d.bytes(d.int(0, 30));
  if (d.chance(0.3)) res.path = d.pick(['a', '/a/b', '', 'é', '/x'.repeat(50)]);
  if (d.chance(0.2)) res.flags = d.pick([0, 4, 8, 12, -1]);
  if (d.chance(0.1)) res.len = d.pick([0, 3, -1, 0x7fffffff]);
  if (d.chance(0.3)) {
    const codes = Object.values(Err).filter((v): v is Err => typeof v === 'number');
    res.errCode = d.pick([...codes, 55 as Err]);
    if (d.chance(0.5)) res.errDetail = d.pick(['permission denied', 'x', '']);
  }
  return encodeFrame(toBinary(ResponseSchema, res));
}

/** One request frame, as sent or damaged. */
export function requestFrame(d: Dice): Buffer {
  return encodeRequest(randomRequest(d));
}

/** `frame` damaged in one of the ways a stream can be. */
export function mutate(d: Dice, frame: Buffer): Buffer {
  const b = Buffer.from(frame);
  switch (d.int(0, 6)) {
    case 0: {
      // Flip a few bits anywhere (the length prefix included).
      for (let n = d.int(1, 4); n > 0; n--) b[d.int(0, b.length - 1)]! ^= 1 << d.int(0, 7);
      return b;
    }
    case 1:
      return b.subarray(0, d.int(0, b.length - 1)); // cut short
    case 2: {
      const at = d.int(0, b.length);
      return Buffer.concat([b.subarray(0, at), d.bytes(d.int(1, 8)), b.subarray(at)]);
    }
    case 3: {
      // A length prefix that lies (longer, shorter, huge).
      const len = b.length - 4;
      b.writeUInt32BE(d.pick([0, 1, Math.max(0, len - 1), len + 1, len + 100, 0x00ffffff]), 0);
      return b;
    }
    case 4: {
      // The payload's bytes replaced by random ones, the length kept.
      const body = d.bytes(b.length - 4);
      return Buffer.concat([b.subarray(0, 4), body]);
    }
    case 5:
      return d.bytes(d.int(0, 64)); // plain garbage
    default:
      return Buffer.concat([b, b]); // twice
  }
}

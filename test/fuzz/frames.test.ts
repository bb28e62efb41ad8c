/**
 * Fuzzing of both sides' frame decoding with random and damaged frames,
 * bounded in count and time, seeded and reproducible: the seed is printed,
 * `FUZZ_SEED=<seed>` replays it (case `i` is drawn from the seed and `i`
 * alone), `FUZZ_CASES` sets the count. Asserted: the process survives, no
 * rejection goes unhandled, bad input costs at most its own connection
 * (with the server's usual log line), every answer the server sends is a
 * whole Response, every client error is typed, and healthy clients are
 * answered afterwards.
 */
import { randomInt } from 'node:crypto';
import { connect } from 'node:net';
import { fromBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DoozerClient, DoozerClientError } from '../../lib/doozer/index.js';
import { DoozerServer } from '../../lib/testing/index.js';
import { FrameDecoder, ResponseSchema, Verb } from '../../lib/wire/index.js';
import { RawServer } from '../doozer/fixture.js';
import { connectRaw, startServer, until, within } from '../server/helpers.js';
import { Dice, rng } from '../support/random.js';
import { mutate, randomResponse, requestFrame } from './mutate.js';

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : randomInt(2 ** 31);
const CASES = Number(process.env.FUZZ_CASES ?? 400);
/** Each half stops drawing new cases after this long (a slow machine runs fewer). */
const BUDGET_MS = 2500;
const PARALLEL = 8;

/** The dice of case `i`: from the seed and `i` alone, whatever ran before. */
const diceFor = (i: number, salt: number): Dice =>
  new Dice(rng((SEED ^ Math.imul(i + 1, 0x9e3779b1) ^ salt) | 0));
const where = (i: number): string => `FUZZ_SEED=${SEED}, case ${i}`;

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

beforeAll(() => {
  console.log(`fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED})`);
  process.on('unhandledRejection', onUnhandled);
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});

/** Sends `bytes` on a new connection, half-closes, and resolves with all it got back once closed. */
function exchange(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ port, host: '127.0.0.1' }, () => socket.end(bytes));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {}); // a reset is an answer too
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.setTimeout(20_000, () => reject(new Error('the server neither answered nor closed')));
  });
}

describe(`fuzz (seed ${SEED})`, () => {
  it('the server: random and damaged request frames cost at most their own connection', async () => {
    const warnings: string[] = [];
    const server = await startServer({ logger: { warn: (m) => warnings.push(m) } });
    const healthy = await connectRaw(server);
    await healthy.call({ verb: Verb.SET, path: '/f', rev: 0, value: 'file' });
    const started = performance.now();
    let ran = 0;
    let answers = 0;
    for (let i = 0; i < CASES && performance.now() - started < BUDGET_MS; i += PARALLEL) {
      const batch = Array.from({ length: Math.min(PARALLEL, CASES - i) }, async (_, k) => {
        const d = diceFor(i + k, 1);
        const frames = Array.from({ length: d.int(1, 4) }, () => {
          const frame = requestFrame(d);
          return d.chance(0.7) ? mutate(d, frame) : frame;
        });
        const got = await exchange(server.port, Buffer.concat(frames));
        // Whatever came back is whole Response frames (maybe cut by the close).
        new FrameDecoder(0xffffffff).push(got, (payload) => {
          expect(() => fromBinary(ResponseSchema, payload), where(i + k)).not.toThrow();
          answers++;
        });
      });
      await Promise.all(batch);
      ran += batch.length;
      // The healthy connection is answered after every batch.
      expect((await within(healthy.call({ verb: Verb.REV }), 20_000, 'REV')).rev).toBeGreaterThan(
        57,
      );
    }
    console.log(
      `fuzz server: ${ran} cases, ${answers} answers, ${warnings.length} connections closed`,
    );
    expect(ran).toBeGreaterThan(0);
    await until(() => server.connections === 1, 'the fuzz connections to be gone');
    await until(() => server.waiting === 0, 'their waits to be freed');
    expect((await healthy.call({ verb: Verb.GET, path: '/f' })).value).toBe('file');
    for (const w of warnings) expect(w).toMatch(/^closing connection from 127\.0\.0\.1:\d+: /);
    expect(unhandled).toEqual([]);
  });

  it('the client: random and damaged answers reject with typed errors, and it recovers', async () => {
    let healthyMode = false;
    let n = 0;
    const fixture = await RawServer.start((req, conn) => {
      if (healthyMode) return { rev: 7n };
      const d = diceFor(n++, 2);
      const answer = randomResponse(d, d.chance(0.9) ? req.tag : d.int(0, 5));
      switch (d.int(0, 9)) {
        case 0:
          return null; // never answered: the request times out
        case 1:
          conn.write(mutate(d, answer));
          conn.drop(); // a damaged stream cannot be resynchronised: the client must cope with the close
          return null;
        case 2:
          conn.write(answer.subarray(0, 3));
          setImmediate(() => conn.write(answer.subarray(3))); // split
          return null;
        case 3:
          conn.write(Buffer.concat([answer, mutate(d, answer)]));
          conn.drop();
          return null;
        default:
          conn.write(answer);
          return null;
      }
    });
    const client = await DoozerClient.connect(fixture.uri(), {
      requestTimeoutMs: 50,
      keepalive: false,
      reconnect: { initialDelayMs: 1, maxDelayMs: 5 },
    });
    const outcomes = new Map<string, number>();
    const count = (what: string): void => void outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
    try {
      const started = performance.now();
      for (let i = 0; i < CASES && performance.now() - started < BUDGET_MS; i++) {
        const d = diceFor(i, 3);
        const path = d.pick(['/a', '/a/b', '/ctl/name']);
        const calls: (() => Promise<unknown>)[] = [
          () => client.rev(),
          () => client.get(path, d.chance(0.5) ? 5 : undefined),
          () => client.set(path, -1, 'v'),
          () => client.del(path, -1),
          () => client.wait('/**', 1, { timeoutMs: 50 }),
          () => client.stat(path),
          () => client.getdir('/', 1, 0, 3),
          () => client.self(),
          () => client.nop(),
          async () => {
            for await (const entry of client.walk('/**', 1)) void entry;
          },
        ];
        try {
          await d.pick(calls)();
          count('answered');
        } catch (e) {
          expect(e, `${where(i)}: ${String(e)}`).toBeInstanceOf(DoozerClientError);
          count((e as Error).name);
        }
      }
      console.log(`fuzz client: ${JSON.stringify(Object.fromEntries(outcomes))}`);
      // Once the server behaves again, the same client is answered.
      healthyMode = true;
      const rev = await within(
        (async () => {
          for (;;) {
            try {
              return await client.rev({ timeoutMs: 1000 });
            } catch (e) {
              expect(e).toBeInstanceOf(DoozerClientError);
            }
          }
        })(),
        20_000,
        'the client to recover',
      );
      expect(rev).toBe(7);
    } finally {
      await client.close();
      await fixture.close();
    }
    // And a new client against a real server works as ever.
    const server = await DoozerServer.start({ heartbeatMs: 0 });
    try {
      const fresh = await DoozerClient.connect(server.uri);
      expect(await fresh.rev()).toBe(58);
      await fresh.close();
    } finally {
      await server.close();
    }
    expect(unhandled).toEqual([]);
  });
});

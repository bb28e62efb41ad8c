/**
 * Bad input closes only the offending connection, with one log line that
 * never carries a secret; everyone else keeps being served.
 */
import { describe, expect, it, vi } from 'vitest';
import { Engine } from '../../lib/server/engine.js';
import { Verb } from '../../lib/wire/index.js';
import { connectRaw, startServer, until, within } from './helpers.js';

const SECRET = 'sekrit-rw-value';

async function setup(maxFrameBytes?: number) {
  const warnings: string[] = [];
  const server = await startServer({
    rwSecret: SECRET,
    maxFrameBytes,
    logger: { warn: (m) => warnings.push(m) },
  });
  const bystander = await connectRaw(server);
  await bystander.call({ verb: Verb.ACCESS, value: SECRET });
  const victim = await connectRaw(server);
  await victim.call({ verb: Verb.ACCESS, value: SECRET });
  const check = async (what: RegExp) => {
    await within(victim.closed, 10_000, 'the offending connection to close');
    await until(() => warnings.length > 0, 'a log line');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(what);
    expect(warnings[0]).toMatch(/^closing connection from 127\.0\.0\.1:\d+: /);
    expect(warnings.join('\n')).not.toContain(SECRET);
    // Everyone else is still served, with their access intact.
    expect((await bystander.call({ verb: Verb.SET, path: '/ok', rev: -1, value: 'v' })).rev).toBe(
      59,
    );
    await until(() => server.connections === 1, 'the server to forget the connection');
  };
  return { server, victim, check };
}

function frameHeader(length: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(length);
  return b;
}

describe('malformed input', () => {
  it('garbage (an HTTP request) reads as an oversize length and closes the connection', async () => {
    const { victim, check } = await setup();
    victim.writeRaw(Buffer.from(`GET / HTTP/1.1\r\nAuthorization: ${SECRET}\r\n\r\n`));
    await check(/frame length \d+ exceeds the limit of 16777216 bytes/);
  });

  it('an oversize length prefix closes at once, without waiting for the body', async () => {
    const { victim, check } = await setup(1024);
    victim.writeRaw(frameHeader(1025));
    await check(/frame length 1025 exceeds the limit of 1024 bytes/);
  });

  it('a frame cut short by the client closing is logged as truncated', async () => {
    const { victim, check } = await setup();
    victim.writeRaw(Buffer.concat([frameHeader(100), Buffer.from(SECRET)]));
    victim.socket.end();
    await check(/stream ended inside a frame \(15 of 100 bytes received\)/);
  });

  it.each([
    ['a truncated varint', [0x08, 0xff]],
    ['an invalid wire type', [0x0f]],
    ['a length past the end', [0x22, 0x7f, 0x41]],
  ])('an undecodable protobuf (%s) closes the connection', async (_, bytes) => {
    const { victim, check } = await setup();
    const payload = Buffer.from(bytes);
    victim.writeRaw(Buffer.concat([frameHeader(payload.length), payload]));
    await check(/undecodable request of \d+ bytes/);
  });

  it('a request whose bytes hold the secret is never logged', async () => {
    const { victim, check } = await setup();
    const payload = Buffer.concat([
      Buffer.from([0x2a, SECRET.length]),
      Buffer.from(SECRET),
      Buffer.from([0x0f]),
    ]);
    victim.writeRaw(Buffer.concat([frameHeader(payload.length), payload]));
    await check(/undecodable request/);
  });

  it('a bug while handling a request costs that client its connection, not the server', async () => {
    const { victim, check } = await setup();
    const spy = vi.spyOn(Engine.prototype, 'handle').mockImplementationOnce(() => {
      throw new Error('simulated bug');
    });
    victim.send({ verb: Verb.REV });
    await check(/internal error: simulated bug/);
    spy.mockRestore();
  });

  it('an empty frame is a request with no verb: UNKNOWN_VERB, not a disconnect', async () => {
    const { victim } = await setup();
    victim.writeRaw(frameHeader(0));
    expect(await within(victim.next(), 10_000, 'an answer')).toEqual({ err: 'UNKNOWN_VERB' });
  });

  it('frames split at every byte boundary are still understood', async () => {
    const { victim } = await setup();
    const { encodeRequest } = await import('../../lib/testing/index.js');
    const bytes = Buffer.concat([
      encodeRequest({ tag: 1, verb: Verb.GET, path: '/ctl/name' }),
      encodeRequest({ tag: 2, verb: Verb.REV }),
    ]);
    for (const b of bytes) {
      victim.writeRaw(Uint8Array.of(b));
      await new Promise((r) => setImmediate(r));
    }
    expect(await victim.answerTo(1)).toEqual({ tag: 1, rev: 1, value: 'local' });
    expect(await victim.answerTo(2)).toEqual({ tag: 2, rev: 58 });
  });
});

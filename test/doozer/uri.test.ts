/** URI parsing, redaction, address forms and the backoff policy. */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BACKOFF,
  DoozerArgumentError,
  DoozerClient,
  DoozerUriError,
  formatAddress,
  parseAddress,
  parseDoozerUri,
} from '../../lib/doozer/index.js';
import { backoffDelay, resolveBackoff } from '../../lib/doozer/backoff.js';
import { uriSecret } from '../../lib/doozer/uri.js';
import { rejection } from './helpers.js';

describe('parseDoozerUri', () => {
  it('parses addresses, default port, IPv6, cluster name and secret', () => {
    const uri = parseDoozerUri(
      'doozer:?ca=10.0.0.1:8041&ca=db.example.com&ca=[::1]:9000&ca=[fe80::1]&cn=prod-1&sk=p%40ss+word&un=me',
    );
    expect(uri.addresses).toEqual([
      { host: '10.0.0.1', port: 8041 },
      { host: 'db.example.com', port: 8046 },
      { host: '::1', port: 9000 },
      { host: 'fe80::1', port: 8046 },
    ]);
    expect(uri.clusterName).toBe('prod-1');
    expect(uri.un).toBe('me');
    expect(uri.hasSecret).toBe(true);
    expect(uriSecret(uri)).toBe('p@ss word');
    expect(uri.addresses.map(formatAddress)).toEqual([
      '10.0.0.1:8041',
      'db.example.com:8046',
      '[::1]:9000',
      '[fe80::1]:8046',
    ]);
  });

  it('accepts a cluster name alone, or addresses alone', () => {
    expect(parseDoozerUri('doozer:?cn=local')).toMatchObject({
      addresses: [],
      clusterName: 'local',
    });
    expect(parseDoozerUri('doozer:?ca=127.0.0.1:1')).toMatchObject({
      clusterName: undefined,
      hasSecret: false,
    });
  });

  it('redacts the secret in toString, JSON and inspect', () => {
    const uri = parseDoozerUri('doozer:?ca=127.0.0.1:8046&sk=very-secret');
    const shown = [
      uri.toString(),
      String(uri),
      JSON.stringify(uri),
      JSON.stringify({ uri }),
      inspect(uri),
      inspect(uri, { showHidden: true, depth: 5 }),
      inspect({ nested: uri }),
    ];
    expect(uri.toString()).toBe('doozer:?ca=127.0.0.1:8046&sk=***');
    for (const s of shown) {
      expect(s).not.toContain('very-secret');
      expect(s).toContain('sk=***');
    }
    expect(Object.keys(uri)).not.toContain('secret');
  });

  it.each([
    ['http://x', /must start with "doozer:\?"/],
    ['doozer:ca=1.2.3.4', /must start with/],
    ['doozer:?', /at least one ca= address or a cn=/],
    ['doozer:?sk=x', /at least one ca= address or a cn=/],
    ['doozer:?ca=', /empty address/],
    ['doozer:?ca=host:0', /port "0" is not a number from 1 to 65535/],
    ['doozer:?ca=host:70000', /port "70000"/],
    ['doozer:?ca=host:abc', /port "abc"/],
    ['doozer:?ca=::1', /must be written in brackets/],
    ['doozer:?ca=[::1', /not a valid \[IPv6\] address/],
    ['doozer:?ca=[nothost]:1', /not a valid \[IPv6\] address/],
    ['doozer:?ca=[::1]x', /unexpected "x" after "\]"/],
    ['doozer:?ca=bad host:1', /"bad host" is not a valid host/],
    ['doozer:?ca=a:1&cn=a/b', /cluster name cn="a\/b"/],
    ['doozer:?ca=a:1&cn=x&cn=y', /cn= is given more than once/],
    ['doozer:?ca=a:1&sk=', /sk= is empty/],
    ['doozer:?ca=a:1&ac=b:2', /unknown Doozer URI parameter "ac"/],
  ])('rejects %s', (uri, message) => {
    expect(() => parseDoozerUri(uri)).toThrow(DoozerUriError);
    expect(() => parseDoozerUri(uri)).toThrow(message);
  });

  it('never puts the secret in a parse error', () => {
    const secret = 'shh-SECRET';
    for (const uri of [
      `doozer:?sk=${secret}`,
      `doozer:?sk=${secret}&sk=${secret}`,
      `doozer:?sk=${secret}&ca=[::1`,
      `doozer:?sk=${secret}&zz=1`,
      // A secret with an unescaped "&": its tail parses as an unknown key.
      `doozer:?ca=a:1&sk=shh&${secret}=1`,
      `doozer:?ca=a:1&sk=shh&${secret}`,
      // ... or as a ca= or cn= parameter whose value is not valid (issue 17).
      `doozer:?ca=a:1&sk=shh&ca=${secret}!`,
      `doozer:?ca=a:1&sk=shh&ca=x:${secret}`,
      `doozer:?sk=shh&cn=${secret}/x`,
    ]) {
      const err = (() => {
        try {
          parseDoozerUri(uri);
        } catch (e) {
          return e;
        }
        throw new Error('expected a DoozerUriError');
      })();
      expect(err).toBeInstanceOf(DoozerUriError);
      expect(`${String(err)} ${inspect(err)}`).not.toContain(secret);
    }
  });

  it('parses a bare address', () => {
    expect(parseAddress('localhost')).toEqual({ host: 'localhost', port: 8046 });
    expect(() => parseAddress('a:b:c')).toThrow(DoozerUriError);
  });

  it('rejects bad client options before connecting', async () => {
    const uri = 'doozer:?ca=127.0.0.1:1';
    for (const options of [
      { connectTimeoutMs: 0 },
      { requestTimeoutMs: -5 },
      { maxFrameBytes: 10 },
      { reconnect: { multiplier: 0.5 } },
      { reconnect: { jitter: 2 } },
      { reconnect: { initialDelayMs: 100, maxDelayMs: 10 } },
    ]) {
      expect(await rejection(DoozerClient.connect(uri, options))).toBeInstanceOf(
        DoozerArgumentError,
      );
    }
  });
});

describe('reconnect backoff', () => {
  it('defaults to 100 ms, x2, capped at 5000 ms, full jitter', () => {
    expect(resolveBackoff(undefined)).toEqual({
      initialDelayMs: 100,
      maxDelayMs: 5000,
      multiplier: 2,
      jitter: 1,
    });
    expect(resolveBackoff(true)).toBe(DEFAULT_BACKOFF);
    expect(resolveBackoff(false)).toBeUndefined();
    const ceilings = [0, 1, 2, 3, 4, 5, 6, 10].map((n) =>
      backoffDelay(DEFAULT_BACKOFF, n, () => 0),
    );
    expect(ceilings).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    expect(backoffDelay(DEFAULT_BACKOFF, 3, () => 0.999999)).toBeLessThan(1);
    expect(backoffDelay(DEFAULT_BACKOFF, 3, () => 0.5)).toBe(400);
  });

  it('applies partial jitter and custom parameters', () => {
    const policy = resolveBackoff({
      initialDelayMs: 10,
      multiplier: 3,
      maxDelayMs: 50,
      jitter: 0.2,
    });
    expect(policy).toBeDefined();
    expect(backoffDelay(policy!, 1, () => 0)).toBe(30);
    expect(backoffDelay(policy!, 1, () => 1)).toBeCloseTo(24);
    expect(backoffDelay(policy!, 5, () => 0)).toBe(50);
  });
});

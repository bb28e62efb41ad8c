/**
 * What a listener of ours needs to know about the address it binds: shared
 * by the embedded server and the live view, so both judge a bind the same
 * way. Nothing here knows about either.
 */
import { isIPv4 } from 'node:net';

/** True for the any-address binds (`0.0.0.0`, `::`): reachable from every network, dialable by none. */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/** True for a loopback address or name: `127.0.0.0/8`, `::1`, `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '::ffff:127.0.0.1') return true;
  return isIPv4(h) && h.startsWith('127.');
}

/**
 * Shared helpers of the embedded server's raw-socket tests: servers and raw
 * connections closed when the test finishes, and event-based waits.
 */
import { createServer } from 'node:net';
import { onTestFinished } from 'vitest';
import {
  DoozerServer,
  RawDoozerConnection,
  type DoozerServerOptions,
} from '../../lib/testing/index.js';
import { Verb } from '../../lib/wire/index.js';

/** Starts a server (heartbeat off unless asked) that is closed when the test finishes. */
export async function startServer(options: DoozerServerOptions = {}): Promise<DoozerServer> {
  const server = await DoozerServer.start({ heartbeatMs: 0, ...options });
  onTestFinished(() => server.close());
  return server;
}

/** Opens a raw connection to `server` that is closed when the test finishes. */
export async function connectRaw(server: {
  port: number;
  host: string;
}): Promise<RawDoozerConnection> {
  const conn = await RawDoozerConnection.connect(server.port, server.host);
  onTestFinished(() => conn.close());
  return conn;
}

/** Resolves with `promise`, or rejects after `ms` (a safety net, never a sleep). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** True when `promise` has not settled after the event loop went round a few times. */
export async function isPending(promise: Promise<unknown>, turns = 20): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < turns && !settled; i++) await new Promise((r) => setImmediate(r));
  return !settled;
}

/** Waits until `cond()` holds, polling each macrotask turn; fails after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * Asserts deterministically that the request behind `answer` is still
 * unanswered: the server handles a connection's requests in order, so once
 * a REV sent after it is answered, an answer to it would already be here.
 */
export async function expectBlocked(
  conn: RawDoozerConnection,
  answer: Promise<unknown>,
): Promise<void> {
  await conn.call({ verb: Verb.REV });
  if (!(await isPending(answer, 3))) throw new Error('expected the request to be still waiting');
}

/** True when this machine can listen on the IPv6 loopback (`::1`). */
export function ipv6Loopback(): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ host: '::1', port: 0 }, () => probe.close(() => resolve(true)));
  });
}

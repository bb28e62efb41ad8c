/** Errors of the etcd backend. */
import { ElectionError } from '../../election/errors.js';
import type { LockErrorKind } from '../../election/port.js';

/**
 * A failure talking to etcd. `kind` tells the engine whether to retry:
 * `transient` for a lost connection, a timeout, an unavailable member;
 * `fatal` for refused credentials or permissions. The message never holds
 * the password.
 */
export class EtcdStoreError extends ElectionError {
  override name = 'EtcdStoreError';
  constructor(
    readonly kind: LockErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** The optional peer dependency `etcd3` is not installed. */
export class EtcdDriverMissingError extends ElectionError {
  override name = 'EtcdDriverMissingError';
  constructor(cause: unknown) {
    super(
      'the etcd backend needs the `etcd3` package: install it with `npm install etcd3` ' +
        `(${cause instanceof Error ? cause.message : String(cause)})`,
    );
  }
}

/** gRPC status codes that mean etcd refused us for good (unauthenticated, permission denied). */
const FATAL_CODES = new Set([7, 16]);

/**
 * Turns whatever the driver threw into an {@link EtcdStoreError}, with
 * `what` (the operation) in the message. Passwords never reach the message:
 * the driver's messages come from the server and hold none, and `redact`
 * removes the password should one slip in.
 */
export function toStoreError(
  err: unknown,
  what: string,
  redact: (s: string) => string,
): EtcdStoreError {
  if (err instanceof EtcdStoreError) return err;
  const e = err as { message?: unknown; code?: unknown; name?: unknown } | null;
  const message = redact(typeof e?.message === 'string' ? e.message : String(err));
  const name = typeof e?.name === 'string' ? e.name : '';
  const fatal =
    (typeof e?.code === 'number' && FATAL_CODES.has(e.code)) ||
    /Unauthenticated|AuthenticationFailed|PermissionDenied/.test(name) ||
    /authentication failed|permission denied|user name is empty/i.test(message);
  return new EtcdStoreError(fatal ? 'fatal' : 'transient', `etcd ${what}: ${message}`);
}

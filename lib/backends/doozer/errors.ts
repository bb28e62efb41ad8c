/** How the Doozer lock reads the Doozer client's errors. */
import {
  DoozerArgumentError,
  DoozerError,
  DoozerPathError,
  DoozerPermissionError,
} from '../../doozer/errors.js';
import { ElectionConfigError, LockArgumentError } from '../../election/errors.js';
import type { LockErrorKind } from '../../election/port.js';

/** A compare-and-set (SET or DEL at a rev) found the file changed: a conflict, not an error. */
export const isRevMismatch = (err: unknown): boolean =>
  err instanceof DoozerError && err.code === 'REV_MISMATCH';

/**
 * Whether the engine should retry after `err`.
 *
 * Fatal: the server refused access (`permission denied`: a missing or
 * wrong `sk`), or the lock was handed something it cannot use (a version or
 * term it did not issue, a closed lock, a bad argument): retrying cannot
 * help. Everything else is transient: a lost connection, a timeout, an
 * abort, `TOO_LATE`, `READONLY` (a node that is not a consensus member yet),
 * a server error.
 */
export function classifyDoozerError(err: unknown): LockErrorKind {
  if (
    err instanceof DoozerPermissionError ||
    err instanceof LockArgumentError ||
    err instanceof ElectionConfigError ||
    err instanceof DoozerArgumentError ||
    err instanceof DoozerPathError
  ) {
    return 'fatal';
  }
  return 'transient';
}

/** The message of anything thrown. */
export const describeError = (err: unknown): string =>
  err instanceof Error ? err.message : String(err);

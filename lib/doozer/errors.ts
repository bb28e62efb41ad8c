/**
 * Typed errors of the Doozer client. Every error the client raises is one of
 * these; none of them ever carries the access secret (`sk`).
 */

/** Error codes a Doozer server answers with (`Response.err_code`). */
export type DoozerErrorCode =
  | 'OTHER'
  | 'TAG_IN_USE'
  | 'UNKNOWN_VERB'
  | 'READONLY'
  | 'TOO_LATE'
  | 'REV_MISMATCH'
  | 'BAD_PATH'
  | 'MISSING_ARG'
  | 'RANGE'
  | 'NOTDIR'
  | 'ISDIR'
  | 'NOENT'
  | `UNKNOWN_${number}`;

/** Base class of every error raised by the Doozer client. */
export class DoozerClientError extends Error {
  override name = 'DoozerClientError';
}

/** The server answered a request with an error (`err_code` / `err_detail`). */
export class DoozerError extends DoozerClientError {
  override name = 'DoozerError';
  constructor(
    /** The symbolic error code, e.g. `REV_MISMATCH`. */
    readonly code: DoozerErrorCode,
    /** The server's `err_detail`, or `''`. */
    readonly detail: string,
    /** The verb of the failed request, e.g. `SET`. */
    readonly verb: string,
    /** The path or glob of the failed request, when it had one. */
    readonly path?: string,
  ) {
    super(`${verb}${path === undefined ? '' : ` ${path}`}: ${code}${detail ? ` (${detail})` : ''}`);
  }
}

/**
 * A WAIT (or a read pinned to a rev) asked for a rev older than the server's
 * history. Resync from current state: read what you follow at `rev()` and
 * WAIT again from there.
 */
export class DoozerTooLateError extends DoozerError {
  override name = 'DoozerTooLateError';
}

/** The server refused the request: `OTHER` with detail `permission denied`. */
export class DoozerPermissionError extends DoozerError {
  override name = 'DoozerPermissionError';
}

/**
 * The connection the request was sent on closed (or could not be opened)
 * before an answer came. Every outstanding request of a connection rejects
 * with this when its socket closes.
 */
export class DoozerConnectionError extends DoozerClientError {
  override name = 'DoozerConnectionError';
  constructor(
    message: string,
    /** The address (`host:port`) involved, when known. */
    readonly address?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A request did not get its answer within its timeout. Its tag stays reserved until the server answers. */
export class DoozerTimeoutError extends DoozerClientError {
  override name = 'DoozerTimeoutError';
  constructor(
    readonly verb: string,
    readonly timeoutMs: number,
  ) {
    super(`${verb} timed out after ${timeoutMs} ms`);
  }
}

/** A `doozer:` URI could not be parsed or resolved. The message never includes the secret. */
export class DoozerUriError extends DoozerClientError {
  override name = 'DoozerUriError';
}

/** A path or name broke the Doozer path rules; raised before anything is sent. */
export class DoozerPathError extends DoozerClientError {
  override name = 'DoozerPathError';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`invalid Doozer path ${JSON.stringify(path)}: ${reason}`);
  }
}

/** The server sent something that is not a valid answer; the connection is closed. */
export class DoozerProtocolError extends DoozerConnectionError {
  override name = 'DoozerProtocolError';
}

/**
 * An argument given to the client was unusable (a rev that is not a safe
 * integer, a negative timeout, an offset outside int32, a request frame larger
 * than `maxFrameBytes`...). Raised before anything is sent.
 */
export class DoozerArgumentError extends DoozerClientError {
  override name = 'DoozerArgumentError';
}

/**
 * The server answered with a rev that a JavaScript number cannot hold exactly
 * (outside ±(2^53 - 1)). The request fails; the connection stays open.
 */
export class DoozerRevRangeError extends DoozerClientError {
  override name = 'DoozerRevRangeError';
  constructor(
    /** The verb of the request whose answer carried the rev. */
    readonly verb: string,
    /** The rev exactly as the server sent it. */
    readonly rev: bigint,
  ) {
    super(`${verb}: the server answered rev ${rev}, which is not a safe JavaScript integer`);
  }
}

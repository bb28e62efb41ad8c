/**
 * The boundary between the generated protobuf messages and the client's
 * JavaScript values: revs (int64 bigint <-> safe-integer number), values
 * (bytes <-> string), error answers (err_code -> typed errors) and results.
 */
import { isFieldSet } from '@bufbuild/protobuf';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { Err, ResponseSchema, Verb, FLAG_DEL, FLAG_SET, type Response } from '../wire/index.js';
import {
  DoozerArgumentError,
  DoozerError,
  DoozerPermissionError,
  DoozerRevRangeError,
  DoozerTooLateError,
  type DoozerErrorCode,
} from './errors.js';
import type { DoozerEvent, DoozerFile, DoozerStat, DoozerWalkEntry } from './types.js';

const ERR_FIELD = ResponseSchema.field.errCode;
const ERR_FIELD_NO = ERR_FIELD.number;
const utf8 = new TextDecoder();
const MIN_INT32 = -0x80000000;
const MAX_INT32 = 0x7fffffff;

/** Name of a verb for messages, e.g. `GET`. */
export function verbName(verb: Verb): string {
  return Verb[verb] ?? `VERB_${verb}`;
}

/** Symbolic name of an error code. */
export function errCodeName(code: number): DoozerErrorCode {
  const name = Err[code] as DoozerErrorCode | undefined;
  return name ?? `UNKNOWN_${code}`;
}

/**
 * The answer's `err_code`, or `undefined` when it has none. `err_code` is a
 * closed (proto2) enum: a code this schema does not list is kept by the
 * decoder as an unknown field, and is still an error answer.
 */
export function answerErrCode(resp: Response): Err | undefined {
  if (isFieldSet(resp, ERR_FIELD)) return resp.errCode;
  const unknown = resp.$unknown;
  if (unknown === undefined) return undefined;
  for (let i = unknown.length - 1; i >= 0; i--) {
    const field = unknown[i];
    if (field?.no === ERR_FIELD_NO) return new BinaryReader(field.data).int32();
  }
  return undefined;
}

/** The typed error for an answer that carries `err_code`, or `undefined` for a success. */
export function answerError(
  resp: Response,
  verb: Verb,
  path: string | undefined,
): DoozerError | undefined {
  const errCode = answerErrCode(resp);
  if (errCode === undefined) return undefined;
  const code = errCodeName(errCode);
  const detail = resp.errDetail;
  const name = verbName(verb);
  if (errCode === Err.TOO_LATE) return new DoozerTooLateError(code, detail, name, path);
  if (errCode === Err.OTHER && detail === 'permission denied') {
    return new DoozerPermissionError(code, detail, name, path);
  }
  return new DoozerError(code, detail, name, path);
}

/** A rev from an answer as a number; throws {@link DoozerRevRangeError} when it is not a safe integer. */
export function revFromWire(rev: bigint, verb: Verb): number {
  const n = Number(rev);
  if (!Number.isSafeInteger(n)) throw new DoozerRevRangeError(verbName(verb), rev);
  return n;
}

/** A rev argument for the wire; throws {@link DoozerArgumentError} unless it is a safe integer. */
export function revToWire(rev: unknown, what = 'rev'): bigint {
  if (typeof rev !== 'number' || !Number.isSafeInteger(rev)) {
    throw new DoozerArgumentError(`${what} must be a safe integer, got ${describe(rev)}`);
  }
  return BigInt(rev);
}

/** Checks an int32 argument (GETDIR/WALK offsets). */
export function int32Arg(value: unknown, what: string): number {
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < MIN_INT32 ||
    value > MAX_INT32
  ) {
    throw new DoozerArgumentError(`${what} must be a 32-bit integer, got ${describe(value)}`);
  }
  return value;
}

/** Checks a string argument (paths, globs). */
export function stringArg(value: unknown, what: string): string {
  if (typeof value !== 'string')
    throw new DoozerArgumentError(`${what} must be a string, got ${describe(value)}`);
  return value;
}

/** A value argument as bytes: strings are encoded as UTF-8. Never echoes the value. */
export function bytesArg(value: unknown, what = 'value'): Uint8Array {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return value;
  throw new DoozerArgumentError(`${what} must be a string or a Uint8Array, got ${typeof value}`);
}

function describe(value: unknown): string {
  return typeof value === 'number' || typeof value === 'bigint' ? String(value) : typeof value;
}

/** A private copy of answer bytes, so results do not pin the socket's read buffer. */
function ownBytes(value: Uint8Array): Uint8Array {
  return value.length === 0 ? new Uint8Array(0) : new Uint8Array(value);
}

class TextValue {
  #text: string | undefined;
  constructor(readonly value: Uint8Array) {}
  /** `value` decoded as UTF-8. */
  get text(): string {
    return (this.#text ??= utf8.decode(this.value));
  }
}

class FileResult extends TextValue implements DoozerFile {
  constructor(
    value: Uint8Array,
    readonly rev: number,
  ) {
    super(value);
  }
}

class EventResult extends TextValue implements DoozerEvent {
  readonly isSet: boolean;
  readonly isDel: boolean;
  constructor(
    readonly path: string,
    readonly rev: number,
    value: Uint8Array,
    readonly flags: number,
  ) {
    super(value);
    this.isSet = (flags & FLAG_SET) !== 0;
    this.isDel = (flags & FLAG_DEL) !== 0;
  }
}

class WalkResult extends TextValue implements DoozerWalkEntry {
  constructor(
    readonly path: string,
    value: Uint8Array,
    readonly rev: number,
  ) {
    super(value);
  }
}

/** Turns a successful answer into the verb's result. */
export type Decode = (resp: Response, verb: Verb) => unknown;

export const decodeNothing: Decode = () => undefined;
export const decodeRev: Decode = (r, v) => revFromWire(r.rev, v);
export const decodeFile: Decode = (r, v): DoozerFile =>
  new FileResult(ownBytes(r.value), revFromWire(r.rev, v));
export const decodeEvent: Decode = (r, v): DoozerEvent =>
  new EventResult(r.path, revFromWire(r.rev, v), ownBytes(r.value), r.flags);
export const decodeStat: Decode = (r, v): DoozerStat => {
  const rev = revFromWire(r.rev, v);
  return { rev, len: r.len, isDir: rev === -2 };
};
export const decodePath: Decode = (r) => r.path;
export const decodeWalk: Decode = (r, v): DoozerWalkEntry =>
  new WalkResult(r.path, ownBytes(r.value), revFromWire(r.rev, v));
export const decodeText: Decode = (r) => utf8.decode(r.value);

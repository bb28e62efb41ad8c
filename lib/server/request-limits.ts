/**
 * What one request may make the embedded server spend before it is refused:
 * a look at an encoded Request that costs a few field headers, whatever the
 * frame's size (it runs before the protobuf decoder), and the path limits.
 */
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { RequestSchema } from '../wire/index.js';

/** Default longest path (or glob) a request may carry, in bytes. */
export const DEFAULT_MAX_PATH_BYTES = 4096;
/** Default most components (`/`-separated parts) a path or glob may have. */
export const DEFAULT_MAX_PATH_DEPTH = 64;
/**
 * Most fields one Request frame may hold. A Request has seven; a frame with
 * more than this (repeated or unknown fields) is not from a real client and
 * would cost the decoder time and memory in proportion: its connection is
 * closed.
 */
export const MAX_REQUEST_FIELDS = 64;

/** The limits on the path of every request. */
export interface PathLimits {
  /** Longest path or glob, in bytes (characters: a valid path is ASCII). */
  readonly maxPathBytes: number;
  /** Most components of a path or glob (the number of `/` in it). */
  readonly maxPathDepth: number;
}

/**
 * Why `path` is over `limits` (the detail of the BAD_PATH answer), or
 * `undefined` when it is within them. Reads at most `maxPathBytes` characters.
 */
export function pathOverLimit(path: string, limits: PathLimits): string | undefined {
  if (path.length > limits.maxPathBytes) return pathTooLong(path.length, limits);
  let depth = 0;
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) depth++;
  if (depth > limits.maxPathDepth) {
    return `path of ${depth} components exceeds maxPathDepth (${limits.maxPathDepth})`;
  }
  return undefined;
}

/** The BAD_PATH detail for a path of `bytes` bytes, past `maxPathBytes`. */
export function pathTooLong(bytes: number, limits: PathLimits): string {
  return `path of ${bytes} bytes exceeds maxPathBytes (${limits.maxPathBytes})`;
}

/** What {@link inspectRequest} learnt from an encoded Request without decoding it. */
export interface RequestShape {
  /** More than {@link MAX_REQUEST_FIELDS} fields: not a request to decode. */
  readonly tooManyFields: boolean;
  /** The `tag` field (the last one, as the decoder reads it), if any. */
  readonly tag: number | undefined;
  /** Bytes of the longest `path` field, `-1` without one. */
  readonly pathBytes: number;
}

const TAG_FIELD = RequestSchema.field.tag.number;
const PATH_FIELD = RequestSchema.field.path.number;

/**
 * Reads the field headers of an encoded Request (at most {@link
 * MAX_REQUEST_FIELDS} + 1 of them, skipping every body by its length), so a
 * frame can be refused before the decoder spends anything on it. Malformed
 * bytes end the look early: the decoder then reports them.
 */
export function inspectRequest(frame: Uint8Array): RequestShape {
  const reader = new BinaryReader(frame);
  let fields = 0;
  let tag: number | undefined;
  let pathBytes = -1;
  let groups = 0;
  try {
    while (reader.pos < reader.len) {
      if (++fields > MAX_REQUEST_FIELDS) return { tooManyFields: true, tag, pathBytes };
      const [no, wireType] = reader.tag();
      if (wireType === WireType.StartGroup) {
        groups++; // a group's fields count one by one
      } else if (wireType === WireType.EndGroup) {
        if (--groups < 0) break;
      } else if (wireType === WireType.Varint) {
        // int32() and int64() read at most 10 bytes (skip() would read any run).
        if (groups === 0 && no === TAG_FIELD) tag = reader.int32();
        else reader.int64();
      } else if (wireType === WireType.LengthDelimited) {
        const len = reader.uint32();
        if (groups === 0 && no === PATH_FIELD) pathBytes = Math.max(pathBytes, len);
        reader.pos += len;
        if (reader.pos > reader.len) break;
      } else {
        reader.skip(wireType, no);
      }
    }
  } catch {
    // Malformed: left to the decoder, which stops at the same place.
  }
  return { tooManyFields: false, tag, pathBytes };
}

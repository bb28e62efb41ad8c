/**
 * The live view's copy of the store tree, bounded: at most `maxFiles` files,
 * and of each value at most `maxValueBytes` (a larger value is kept as its
 * size only, shown as "(n bytes)").
 */

/** One file of the tree as the page gets it. */
export interface FileView {
  readonly path: string;
  /** The file rev (of its last change). */
  readonly rev: number;
  /** Size of the value in bytes. */
  readonly size: number;
  /** The value as text; absent when it is larger than `maxValueBytes`. */
  readonly text?: string;
  /** The value is not valid UTF-8 (`text` then holds it with U+FFFD for the bad bytes). */
  readonly binary?: true;
}

/** The tree as the page gets it in a snapshot. */
export interface TreeView {
  /** Files in Doozer's walk order. */
  readonly files: FileView[];
  /** Some files are not shown: the tree holds more than `maxFiles`. */
  readonly truncated: boolean;
  readonly maxFiles: number;
  readonly maxValueBytes: number;
}

const strict = new TextDecoder('utf-8', { fatal: true });
const lossy = new TextDecoder('utf-8');

/** A value as text, or its size when it is too large to show. */
export function describeValue(
  value: Uint8Array,
  maxValueBytes: number,
): Pick<FileView, 'size' | 'text' | 'binary'> {
  const size = value.byteLength;
  if (size > maxValueBytes) return { size };
  try {
    return { size, text: strict.decode(value) };
  } catch {
    return { size, text: lossy.decode(value), binary: true };
  }
}

/** Doozer's walk order: component by component, so `/a/x` comes before `/a-b`. */
export function comparePaths(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  }
  return x.length - y.length;
}

export class StoreMirror {
  readonly #files = new Map<string, FileView>();
  #truncated = false;

  constructor(
    readonly maxFiles: number,
    readonly maxValueBytes: number,
  ) {}

  /** Number of files mirrored. */
  get size(): number {
    return this.#files.size;
  }

  /** Some files are not shown: the tree reached `maxFiles`. */
  get truncated(): boolean {
    return this.#truncated;
  }

  /** Records a set; the file to send the page, or `undefined` when the tree is full and it is not shown. */
  set(path: string, rev: number, value: Uint8Array): FileView | undefined {
    if (!this.#files.has(path) && this.#files.size >= this.maxFiles) {
      this.#truncated = true;
      return undefined;
    }
    const file: FileView = { path, rev, ...describeValue(value, this.maxValueBytes) };
    this.#files.set(path, file);
    return file;
  }

  /** Records a delete; true when the file was shown. */
  delete(path: string): boolean {
    return this.#files.delete(path);
  }

  snapshot(): TreeView {
    return {
      files: [...this.#files.values()].sort((a, b) => comparePaths(a.path, b.path)),
      truncated: this.#truncated,
      maxFiles: this.maxFiles,
      maxValueBytes: this.maxValueBytes,
    };
  }
}

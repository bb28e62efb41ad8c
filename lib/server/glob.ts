/**
 * Doozer globs, as the reference server compiles them: `?` is one character
 * within a component, `*` any run within one component, `**` any run across
 * components, and everything else matches itself. A glob is shaped like a
 * path (`/` or `/`-separated components) whose components may also hold `*`
 * and `?`.
 */

const GLOB_SHAPE = /^\/$|^(?:\/[a-zA-Z0-9.*?-]+)+$/;

/** A compiled glob. */
export interface Glob {
  /** The pattern as the client sent it. */
  readonly pattern: string;
  /** True when the pattern has no `*` or `?`: it matches exactly one path. */
  readonly literal: boolean;
  /**
   * The longest directory every match lies strictly below (`''` for the
   * root), for literal patterns the path itself. Used to index waiters and
   * to start walks.
   */
  readonly prefix: string;
  /** Components a match has, or `undefined` when `**` makes it unbounded. */
  readonly depth: number | undefined;
  /** True when `path` matches the glob. */
  match(path: string): boolean;
}

/** The glob broke the rules; the server answers OTHER with this message. */
export class GlobError extends Error {
  constructor(readonly pattern: string) {
    super(`invalid glob pattern: ${pattern}`);
  }
}

/** Compiles `pattern`, throwing {@link GlobError} when it is not a valid glob. */
export function compileGlob(pattern: string): Glob {
  if (!GLOB_SHAPE.test(pattern)) throw new GlobError(pattern);
  const literal = !/[*?]/.test(pattern);
  if (literal) {
    return {
      pattern,
      literal,
      prefix: pattern,
      depth: depthOf(pattern),
      match: (p) => p === pattern,
    };
  }
  let source = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        source += '.*';
        i++;
      } else {
        source += '[^/]*';
      }
    } else if (c === '?') {
      source += '[^/]';
    } else if (c === '.' || c === '-') {
      source += `\\${c}`;
    } else {
      source += c;
    }
  }
  const re = new RegExp(`${source}$`);
  const parts = pattern.split('/').slice(1);
  const fixed: string[] = [];
  for (const part of parts) {
    if (/[*?]/.test(part)) break;
    fixed.push(part);
  }
  return {
    pattern,
    literal,
    prefix: fixed.length === 0 ? '' : `/${fixed.join('/')}`,
    depth: pattern.includes('**') ? undefined : parts.length,
    match: (p) => re.test(p),
  };
}

function depthOf(path: string): number {
  return path === '/' ? 0 : path.split('/').length - 1;
}

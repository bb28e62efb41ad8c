/**
 * The Doozer path rules: a path is `/` or `/` followed by components of
 * `[a-zA-Z0-9.-]+` joined by `/`; no trailing slash.
 */
const PATH_RE = /^(?:\/[a-zA-Z0-9.-]+)+$/;
const COMPONENT_RE = /^[a-zA-Z0-9.-]+$/;
/** The first character no path may hold (a whole code point). */
const BAD_CHAR_RE = /[^a-zA-Z0-9./-]/u;

/** True when `path` is a valid Doozer file or directory path. */
export function isValidPath(path: string): boolean {
  return path === '/' || PATH_RE.test(path);
}

/** True when `name` can be one component of a Doozer path. */
export function isValidPathComponent(name: string): boolean {
  return COMPONENT_RE.test(name);
}

/** Why `path` breaks the rules, or `undefined` when it is valid. Linear in the path's length. */
export function explainBadPath(path: string): string | undefined {
  if (isValidPath(path)) return undefined;
  if (path === '') return 'path is empty';
  if (!path.startsWith('/')) return 'path must start with "/"';
  if (path.endsWith('/')) return 'path must not end with "/"';
  if (path.includes('//')) return 'path has an empty component ("//")';
  const bad = BAD_CHAR_RE.exec(path)?.[0];
  return `path contains ${JSON.stringify(bad)}; components may hold only letters, digits, "." and "-"`;
}

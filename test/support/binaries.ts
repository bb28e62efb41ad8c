/**
 * Finding the external programs some suites need (etcd, chromium).
 *
 * Outside CI a suite whose program is missing is skipped, with one line that
 * says how to install it. Under `CI=true` a missing program fails the run:
 * `.ci/run` installs them, so their absence there is a bug.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** True when running under CI (`CI=true`), where a missing program is an error. */
export const underCi = (): boolean => process.env.CI === 'true' || process.env.CI === '1';

/** The first executable among an explicit path (an env variable's value) and `names` on PATH. */
export function findBinary(names: readonly string[], explicit?: string): string | undefined {
  const candidates: string[] = [];
  if (explicit) candidates.push(explicit);
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const dir of [...dirs, '/usr/bin', '/usr/local/bin']) {
    for (const name of names) candidates.push(join(dir, name));
  }
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Finds a program a suite needs. Returns its path, or `undefined` after
 * printing one line saying how to install it (outside CI). Under CI a missing
 * program throws, failing the suite.
 */
export function requireBinary(
  what: string,
  path: string | undefined,
  howToInstall: string,
): string | undefined {
  if (path) return path;
  const line = `${what} not found: ${howToInstall}`;
  if (underCi()) throw new Error(`${line} (CI=true: a missing program fails the run)`);
  console.warn(`[skip] ${line}`);
  return undefined;
}

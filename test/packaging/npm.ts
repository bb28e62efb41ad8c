/** Running npm, node and the packed package from the packaging tests. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The repository root (the package). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface PackageJson {
  name: string;
  version: string;
  main: string;
  types: string;
  bin: Record<string, string>;
  exports: Record<string, unknown>;
  typesVersions: Record<string, Record<string, string[]>>;
  files: string[];
  engines: { node: string };
  [field: string]: unknown;
}

export function packageJson(): PackageJson {
  return JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as PackageJson;
}

/** What consumers import: `nestjs-master-election`, `nestjs-master-election/doozer`, … */
export function specifiers(pkg = packageJson()): string[] {
  return Object.keys(pkg.exports)
    .filter((subpath) => subpath !== './package.json')
    .map((subpath) => (subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`));
}

/**
 * The environment for an npm or node child working on another project:
 * ours less what `npm test` exports about this one (`npm_config_local_prefix`
 * would make npm work on this repository instead).
 */
export function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_config_local_prefix|npm_package_|npm_lifecycle_|npm_command$|INIT_CWD$)/.test(k)) {
      continue;
    }
    env[k] = v;
  }
  return { ...env, npm_config_audit: 'false', npm_config_fund: 'false', NO_COLOR: '1' };
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs `command args` in `cwd` and resolves with its output once it exits 0;
 * rejects with the command, its status and its output otherwise, or after
 * `timeoutMs` (the child is then killed).
 */
export function run(
  command: string,
  args: readonly string[],
  cwd: string,
  timeoutMs: number,
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      if (status === 0) return resolve({ stdout, stderr });
      const how = signal ? `was killed (${signal}; limit ${timeoutMs} ms)` : `exited ${status}`;
      reject(
        new Error(
          `\`${command} ${args.join(' ')}\` in ${cwd} ${how}:\n${stdout}\n${stderr}`.trim(),
        ),
      );
    });
  });
}

/** One file of `npm pack --json`. */
export interface PackedFile {
  path: string;
  size: number;
  mode: number;
}

/** What `npm pack --json` reports of the tarball. */
export interface Packed {
  filename: string;
  integrity: string;
  files: PackedFile[];
}

/**
 * Packs the package (built by the suite's global setup; `--ignore-scripts`,
 * so no lifecycle script rebuilds it) into `destination`, or with
 * `destination` undefined only lists what it would pack (`--dry-run`).
 */
export async function pack(destination: string | undefined): Promise<Packed> {
  const args = ['pack', '--json', '--ignore-scripts'];
  args.push(...(destination === undefined ? ['--dry-run'] : ['--pack-destination', destination]));
  const { stdout } = await run('npm', args, ROOT, 120_000);
  const [packed] = JSON.parse(stdout) as Packed[];
  if (!packed) throw new Error(`npm pack printed no package: ${stdout}`);
  return packed;
}

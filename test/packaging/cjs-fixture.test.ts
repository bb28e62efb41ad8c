/**
 * The package as a CommonJS Nest 11 application uses it (issue 18, item 1):
 * test/packaging/fixtures/nest11-cjs is a minimal `nest new`-style project
 * (TypeScript `"module": "commonjs"`, Jest with ts-jest, Nest 11 pinned with
 * its own package-lock.json). This suite packs the package (`npm pack`, from
 * the dist/ the global setup built), copies the fixture to a temporary
 * directory, installs it with `npm ci` (the npm registry must be reachable;
 * the npm cache makes later runs fast), and then, one step at a time (side
 * by side they would save ~10 s but crowd the suites running next to them,
 * such as the 20-process fault suite):
 *
 *  - type-checks it with `"module": "commonjs"` (moduleResolution node:
 *    `main`/`types`/`typesVersions`) and with `"module": "node16"` (the
 *    `require` and `import` conditions, our .d.ts files checked too);
 *  - runs its Jest test: a module boots against the embedded server from
 *    `nestjs-master-election/testing` and becomes master;
 *  - checks that `import` and `require` of every entry give the same values,
 *    also across Nest's DI (check-dual.mjs);
 *  - runs the two bins from node_modules/.bin.
 *
 * The fixture's lock pins everything, the package's own dependencies
 * included. The suite writes the fresh tarball's integrity (and version,
 * bins, engines) into the temporary copy of the lock: without it npm would
 * install a cached older tarball with the same recorded integrity. If the
 * package's dependencies change, the suite fails and says how to refresh the
 * lock (REFRESH below).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childEnv, pack, packageJson, ROOT, run, specifiers, type PackageJson } from './npm.js';

const FIXTURE = join(ROOT, 'test/packaging/fixtures/nest11-cjs');
const TARBALL = 'nestjs-master-election.tgz';
/** Cold npm caches download ~300 packages: be generous. */
const INSTALL_MS = 300_000;
/** One step (tsc, jest, …): seconds alone, over a minute beside the whole suite on 2 cores. */
const STEP_MS = 180_000;
/** A test's own limit: its step's, and the time to report. */
const TEST_MS = STEP_MS + 15_000;

const REFRESH = `To refresh test/packaging/fixtures/nest11-cjs/package-lock.json:
  npm run build && D=$(mktemp -d) && cp -r test/packaging/fixtures/nest11-cjs "$D/app" &&
  npm pack --ignore-scripts --pack-destination "$D" &&
  mv "$D"/nestjs-master-election-*.tgz "$D/app/${TARBALL}" &&
  (cd "$D/app" && npm install --package-lock-only) &&
  cp "$D/app/package-lock.json" test/packaging/fixtures/nest11-cjs/ && rm -rf "$D"`;

interface LockEntry {
  version: string;
  integrity: string;
  [field: string]: unknown;
}

/** JSON with object keys sorted (npm sorts some of them in its lock). */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}

/**
 * Points the copied lock at the fresh tarball. Fields that do not change the
 * installed tree are written; the dependency fields must already match.
 */
function syncLock(app: string, pkg: PackageJson, integrity: string): void {
  const path = join(app, 'package-lock.json');
  const lock = JSON.parse(readFileSync(path, 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const entry = lock.packages[`node_modules/${pkg.name}`];
  if (!entry) throw new Error(`the fixture's lock has no ${pkg.name}.\n${REFRESH}`);
  for (const field of [
    'dependencies',
    'optionalDependencies',
    'peerDependencies',
    'peerDependenciesMeta',
  ]) {
    if (canonical(entry[field]) !== canonical(pkg[field])) {
      throw new Error(`package.json ${field} differ from the fixture's lock.\n${REFRESH}`);
    }
  }
  entry.version = pkg.version;
  entry.integrity = integrity;
  entry.bin = Object.fromEntries(
    Object.entries(pkg.bin).map(([name, file]) => [name, file.replace(/^\.\//, '')]),
  );
  entry.engines = pkg.engines;
  writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
}

/** Resolves with the first stdout line of `child` that matches `re`. */
function lineOf(child: ChildProcess, re: RegExp, what: string): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${STEP_MS} ms`)), STEP_MS);
    lines.on('line', (line) => {
      const m = re.exec(line);
      if (!m) return;
      clearTimeout(timer);
      resolve(m);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what}: the process exited ${code} first:\n${stderr}`));
    });
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

describe('a Nest 11 CommonJS app installed from the packed tarball', () => {
  const pkg = packageJson();
  let dir = '';
  let app = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nme-nest11-cjs-'));
    app = join(dir, 'app');
    cpSync(FIXTURE, app, { recursive: true });
    const packed = await pack(dir);
    renameSync(join(dir, packed.filename), join(app, TARBALL));
    syncLock(app, pkg, packed.integrity);
    await run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], app, INSTALL_MS);
  }, INSTALL_MS + STEP_MS);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(
    'type-checks with "module": "commonjs" (moduleResolution node)',
    async () => {
      await run(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit'], app, STEP_MS);
    },
    TEST_MS,
  );

  it(
    'type-checks with "module": "node16" (require and import conditions, skipLibCheck off)',
    async () => {
      const tsc = ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.node16.json'];
      await run(process.execPath, tsc, app, STEP_MS);
    },
    TEST_MS,
  );

  it(
    'runs its Jest test: a module boots on the embedded server and becomes master',
    async () => {
      const jest = ['node_modules/jest/bin/jest.js', '--ci'];
      const { stderr } = await run(process.execPath, jest, app, STEP_MS);
      expect(stderr).toMatch(/Tests:\s+2 passed, 2 total/);
    },
    TEST_MS,
  );

  it(
    'gives import and require one copy of every entry, across Nest DI too',
    async () => {
      const entries = specifiers(pkg);
      const { stdout } = await run(process.execPath, ['check-dual.mjs', ...entries], app, STEP_MS);
      const report = JSON.parse(stdout) as { checked: Record<string, number>; master: boolean };
      expect(Object.keys(report.checked)).toEqual(entries);
      for (const n of Object.values(report.checked)) expect(n).toBeGreaterThan(0);
      expect(report.master).toBe(true);
    },
    TEST_MS,
  );

  it(
    'runs both bins: doozer-dev-server, and elect-run-command becoming master on it',
    async () => {
      const bin = (name: string): string => join(app, 'node_modules/.bin', name);
      for (const [name, file] of Object.entries(pkg.bin)) {
        expect(realpathSync(bin(name))).toBe(
          realpathSync(join(app, 'node_modules', pkg.name, file)),
        );
      }
      const start = (name: string, args: string[]): ChildProcess =>
        spawn(bin(name), args, { cwd: app, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      const server = start('doozer-dev-server', ['--listen', '127.0.0.1:0']);
      let cli: ChildProcess | undefined;
      try {
        const [, uri] = await lineOf(
          server,
          /^doozer-dev-server listening on \S+ uri=(\S+)$/,
          'uri',
        );
        cli = start('elect-run-command', [
          ...['--doozer-uri', uri!, '--name', 'packaged', '--participate'],
          ...['--address', '127.0.0.1:2', '--master-cmd', 'echo "master is $MASTER"'],
          ...['--lease-ms', '1000', '--renew-deadline-ms', '600', '--retry-period-ms', '200'],
        ]);
        await lineOf(cli, /^master is 127\.0\.0\.1:2$/, 'the --master-cmd output');
        // Both exit 0 on SIGTERM (docs/cli.md, lib/server/cli.ts).
        expect(await stop(cli)).toBe(0);
        expect(await stop(server)).toBe(0);
      } finally {
        if (cli) await stop(cli);
        await stop(server);
      }
    },
    TEST_MS,
  );
});

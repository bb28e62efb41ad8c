/**
 * Runs the doozer-dev-server CLI as a child process for tests: the compiled
 * dist/cjs/bin/doozer-dev-server.js (exactly what the `bin` entry runs; the suite's
 * global setup compiles dist/ first), killed when the test finishes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { within } from './helpers.js';

const CLI = fileURLToPath(new URL('../../dist/cjs/bin/doozer-dev-server.js', import.meta.url));
const LINE = /^doozer-dev-server listening on (\S+):(\d+) uri=(doozer:\?ca=\S+)$/;

export interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once the process exited and its output is all read. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs the CLI; `preload` is module source that node runs first (with
 * `--import`), to hold the process at a chosen point.
 */
export function run(args: string[], env: Record<string, string> = {}, preload?: string): Run {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\``);
  const imports = preload
    ? ['--import', `data:text/javascript,${encodeURIComponent(preload)}`]
    : [];
  const child = spawn(process.execPath, [...imports, CLI, ...args], {
    env: { ...process.env, DOOZER_RWSECRET: '', DOOZER_ROSECRET: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exit;
  });
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Resolves with the listening line's parts once it is printed. */
export function listening(r: Run): Promise<{ host: string; port: number; uri: string }> {
  return within(
    new Promise((resolve, reject) => {
      const check = (): void => {
        const line = r.stdout().split('\n')[0]!;
        const m = LINE.exec(line);
        if (m && r.stdout().includes('\n'))
          resolve({ host: m[1]!, port: Number(m[2]), uri: m[3]! });
      };
      r.child.stdout!.on('data', check);
      void r.exit.then((e) => reject(new Error(`exited ${JSON.stringify(e)}: ${r.stderr()}`)));
      check();
    }),
    30_000,
    'the listening line',
  );
}

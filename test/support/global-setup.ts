import { spawn } from 'node:child_process';

/** Runs `node <args>` and resolves with its exit status and output. */
function run(args: string[]): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
  });
}

/**
 * Builds the package once before the suite, as `npm run build` does: tests
 * that run code in child processes (CLIs, fault-suite participants, the
 * sample, whose `nestjs-master-election` imports resolve through the
 * package's `exports` to dist/esm and dist/cjs) run the compiled
 * JavaScript in dist/, so it must match the sources under test. The two
 * compilations run side by side. A type error does not stop the suite (tsc
 * still emits); `npm run build` and `npm run lint` catch it.
 */
export default async function setup(): Promise<void> {
  const tsc = 'node_modules/typescript/bin/tsc';
  const builds = await Promise.all([
    run([tsc, '-p', 'tsconfig.build.json']),
    run([tsc, '-p', 'tsconfig.cjs.json']),
  ]);
  for (const b of builds) {
    if (b.status !== 0) {
      console.warn(`[global-setup] tsc reported errors (dist/ still emitted):\n${b.output}`);
    }
  }
  const pkg = await run(['scripts/build-package.mjs']);
  if (pkg.status !== 0) console.warn(`[global-setup] scripts/build-package.mjs:\n${pkg.output}`);
}

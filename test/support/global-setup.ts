import { spawnSync } from 'node:child_process';

/**
 * Compiles the package once before the suite: tests that run code in child
 * processes (CLIs, fault-suite participants) run the compiled JavaScript in
 * dist/, so it must match the sources under test. A type error does not stop
 * the suite (tsc still emits); `npm run build` and `npm run lint` catch it.
 */
export default function setup(): void {
  const tsc = spawnSync(
    process.execPath,
    ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'],
    { encoding: 'utf8' },
  );
  if (tsc.status !== 0) {
    console.warn(
      `[global-setup] tsc reported errors (dist/ still emitted):\n${tsc.stdout}${tsc.stderr}`,
    );
  }
}

/**
 * nest-cli.json: `npm run start:sample` (`nest start`) runs the file that
 * nest-cli.json names, in the build output (dist/, built by the global setup).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const json = (file: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(root, file), 'utf8')) as Record<string, unknown>;

describe('nest-cli.json', () => {
  it('names the sample entry point: dist/<sourceRoot>/<entryFile>.js is the built sample main', () => {
    const config = json('nest-cli.json') as {
      sourceRoot: string;
      entryFile: string;
      compilerOptions: { tsConfigPath: string };
    };
    // What `nest start` runs (its first choice; the CLI falls back to dist/<entryFile>.js).
    expect(join(config.sourceRoot, `${config.entryFile}.ts`)).toBe(
      join('sample', 'src', 'main.ts'),
    );
    expect(existsSync(join(root, config.sourceRoot, `${config.entryFile}.ts`))).toBe(true);
    expect(existsSync(join(root, 'dist', config.sourceRoot, `${config.entryFile}.js`))).toBe(true);
    expect(existsSync(join(root, config.compilerOptions.tsConfigPath))).toBe(true);
    const scripts = (json('package.json') as { scripts: Record<string, string> }).scripts;
    expect(scripts['start:sample']).toBe('nest start');
  });
});

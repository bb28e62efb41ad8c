/**
 * The page: plain HTML, CSS and one script in `lib/live-view/assets/`, read
 * once at start and served as they are (no build step, nothing external).
 * The package ships that folder; from the compiled `dist/cjs/live-view/` it
 * is found at the package root.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One file of the page. */
export interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/live-view.css': { file: 'live-view.css', type: 'text/css; charset=utf-8' },
  '/live-view.js': { file: 'live-view.js', type: 'text/javascript; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

/**
 * Where this module was loaded from. The shipped build is CommonJS
 * (dist/cjs), where Node defines `__dirname`; Vitest defines it for the
 * sources too. The repository's ESM build (dist/lib) has neither that nor a
 * way to name `import.meta` in a file that also compiles to CommonJS, so it
 * looks from the working directory, the repository root.
 */
function moduleDirs(): string[] {
  if (typeof __dirname === 'string') return [__dirname];
  return [join(process.cwd(), 'lib', 'live-view')];
}

/** The folder holding the page: next to this module (sources), or the shipped `lib/` one (dist). */
function assetsDir(): string {
  const candidates = moduleDirs().flatMap((here) => [
    join(here, 'assets'),
    join(here, '..', '..', '..', 'lib', 'live-view', 'assets'),
  ]);
  const dir = candidates.find((d) => existsSync(join(d, 'index.html')));
  if (!dir) throw new Error(`the live view's page is missing: looked in ${candidates.join(', ')}`);
  return dir;
}

/** Reads the page's files, by the URL path they are served at. */
export async function loadAssets(): Promise<Map<string, Asset>> {
  const dir = assetsDir();
  const out = new Map<string, Asset>();
  for (const [path, { file, type }] of Object.entries(FILES)) {
    out.set(path, { type, body: await readFile(join(dir, file)) });
  }
  return out;
}

/**
 * The page: plain HTML, CSS and one script in `lib/live-view/assets/`, read
 * once at start and served as they are (no build step, nothing external).
 * The package ships that folder; from the compiled `dist/lib/live-view/` it is
 * found at the package root.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

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

/** The folder holding the page: next to this module (sources), or the shipped `lib/` one (dist). */
function assetsDir(): string {
  const candidates = ['./assets/', '../../../lib/live-view/assets/'].map((p) =>
    fileURLToPath(new URL(p, import.meta.url)),
  );
  const dir = candidates.find((d) => existsSync(`${d}index.html`));
  if (!dir) throw new Error(`the live view's page is missing: looked in ${candidates.join(', ')}`);
  return dir;
}

/** Reads the page's files, by the URL path they are served at. */
export async function loadAssets(): Promise<Map<string, Asset>> {
  const dir = assetsDir();
  const out = new Map<string, Asset>();
  for (const [path, { file, type }] of Object.entries(FILES)) {
    out.set(path, { type, body: await readFile(dir + file) });
  }
  return out;
}

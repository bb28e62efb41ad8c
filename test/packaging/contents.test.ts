/**
 * What the npm package ships (issue 18, item 9), from `npm pack --dry-run
 * --json` on the dist/ the global setup built: the CommonJS build and its
 * ESM facades, the TypeScript sources its source maps point at, the docs;
 * no tests and none of the repository-only builds (dist/lib, dist/sample,
 * dist/bench, dist/test); every file package.json names; every source map
 * and every relative link of the shipped Markdown resolvable inside the
 * package.
 */
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { headingAnchors, relativeLinks } from './markdown.js';
import { pack, packageJson, ROOT } from './npm.js';

const pkg = packageJson();
let files = new Set<string>();
const read = (path: string): string => readFileSync(`${ROOT}${path}`, 'utf8');
/** `./dist/cjs/index.js` → `dist/cjs/index.js`. */
const inPackage = (p: string): string => posix.normalize(p.replace(/^\.\//, ''));

/** Every file path package.json names (`exports`, `main`, `types`, `typesVersions`, `bin`). */
function namedFiles(): string[] {
  const named = [pkg.main, pkg.types, ...Object.values(pkg.bin)];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') named.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(pkg.exports);
  walk(pkg.typesVersions);
  return named.map(inPackage);
}

describe('the packed package', () => {
  beforeAll(async () => {
    files = new Set((await pack(undefined)).files.map((f) => f.path));
  }, 120_000);

  it('ships the CommonJS build, its ESM facades, the sources, the docs, and nothing else', () => {
    const allowed =
      /^(dist\/cjs\/|dist\/esm\/|lib\/|docs\/(?:backends\/)?[^/]+\.md$|README\.md$|package\.json$)/;
    expect([...files].filter((f) => !allowed.test(f))).toEqual([]);
    expect([...files].filter((f) => /\.test\.ts$|(^|\/)test\/|tsbuildinfo/.test(f))).toEqual([]);
    expect(files).toContain('dist/cjs/package.json');
    expect(JSON.parse(read('dist/cjs/package.json'))).toEqual({ type: 'commonjs' });
    expect(files).toContain('lib/wire/doozer.proto');
  });

  it('ships every file package.json names', () => {
    const named = namedFiles();
    expect(named.length).toBeGreaterThan(8);
    expect(named.filter((f) => f !== 'package.json' && !files.has(f))).toEqual([]);
  });

  it('has bins that start with #!/usr/bin/env node', () => {
    for (const file of Object.values(pkg.bin)) {
      expect(read(inPackage(file)).startsWith('#!/usr/bin/env node\n'), file).toBe(true);
    }
  });

  it('resolves every source map, and every source a map names, inside the package', () => {
    const unresolved: string[] = [];
    let maps = 0;
    for (const file of files) {
      if (!/\.(js|d\.ts)$/.test(file)) continue;
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(read(file))?.[1];
      if (url === undefined) continue;
      const map = posix.join(posix.dirname(file), url);
      if (!files.has(map)) {
        unresolved.push(`${file} → ${map}`);
        continue;
      }
      maps++;
      const { sources, sourceRoot = '' } = JSON.parse(read(map)) as {
        sources: string[];
        sourceRoot?: string;
      };
      for (const source of sources) {
        const path = posix.join(posix.dirname(map), sourceRoot, source);
        if (!files.has(path)) unresolved.push(`${map} → ${path}`);
      }
    }
    expect(unresolved).toEqual([]);
    expect(maps).toBeGreaterThan(10); // the maps are there: the check checked something
  });

  it('links only to what it ships: every relative link of its Markdown, anchors included', () => {
    const broken: string[] = [];
    let links = 0;
    for (const file of [...files].filter((f) => f.endsWith('.md'))) {
      for (const link of relativeLinks(read(file))) {
        links++;
        const where = `${file}:${link.line} (${link.target})`;
        const target = link.path === '' ? file : posix.join(posix.dirname(file), link.path);
        if (!files.has(target)) {
          broken.push(`${where}: ${target} is not in the package`);
          continue;
        }
        if (link.anchor !== undefined && !headingAnchors(read(target)).has(link.anchor)) {
          broken.push(`${where}: ${target} has no heading #${link.anchor}`);
        }
      }
    }
    expect(broken).toEqual([]);
    expect(links).toBeGreaterThan(10);
  });
});

/**
 * The one-way dependencies of docs/architecture.md, checked on the sources:
 * every relative import of every file under lib/ is resolved to the folder
 * it lands in, and a folder may only import from the folders listed for it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const LIB = resolve(__dirname, '../../lib');

/** Folder (first one or two path parts under lib/) → what it must never import. */
const FORBIDDEN: Record<string, string[]> = {
  election: ['backends', 'nest', 'cli', 'live-view', 'metrics', 'entries', 'doozer', 'server'],
  backends: ['nest', 'cli', 'live-view', 'metrics', 'entries', 'election/engine'],
  doozer: ['election', 'backends', 'nest', 'cli', 'live-view', 'metrics', 'entries', 'server'],
  server: ['election', 'backends', 'nest', 'cli', 'live-view', 'metrics', 'entries', 'doozer'],
  wire: [
    'election',
    'backends',
    'nest',
    'cli',
    'live-view',
    'metrics',
    'entries',
    'doozer',
    'server',
  ],
  shared: [
    'election',
    'backends',
    'nest',
    'cli',
    'live-view',
    'metrics',
    'entries',
    'doozer',
    'server',
    'wire',
  ],
  metrics: ['nest', 'cli', 'entries', 'election/engine'],
};

function* sources(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* sources(p);
    else if (e.name.endsWith('.ts')) yield p;
  }
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specs.map((s) =>
    relative(LIB, resolve(dirname(file), s))
      .split('\\')
      .join('/'),
  );
}

const within = (path: string, folder: string): boolean =>
  path === folder || path.startsWith(`${folder}/`);

describe('layers', () => {
  it('every import under lib/ points down the layers of docs/architecture.md', () => {
    const violations: string[] = [];
    let checked = 0;
    for (const file of sources(LIB)) {
      const from = relative(LIB, file).split('\\').join('/');
      const layer = Object.keys(FORBIDDEN).find((f) => within(from, f));
      if (!layer) continue;
      for (const target of importsOf(file)) {
        checked++;
        const bad = FORBIDDEN[layer]!.find((f) => within(target, f));
        if (bad)
          violations.push(`${from} imports ${target} (lib/${layer} must not import lib/${bad})`);
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(violations).toEqual([]);
  });
});

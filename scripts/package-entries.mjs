/**
 * The one list of what the package exposes: its entry points and its bins.
 * Everything else is derived from it by scripts/build-package.mjs (run by
 * `npm run build`): the ESM facades in dist/esm, and the checks that
 * package.json's `exports`, `typesVersions`, `main`, `types` and `bin`
 * match it and that every file they name exists after the build. The
 * packaging tests (test/packaging) read it too.
 *
 * How the package is laid out (docs/packaging.md explains why):
 *   dist/cjs/<source>.js, .d.ts  the one implementation, CommonJS (tsconfig.cjs.json)
 *   dist/esm/<source>.js, .d.ts  generated ESM facades that re-export dist/cjs
 *
 * To add an entry, say `./etcd` for lib/etcd/index.ts:
 *   1. Add `{ subpath: './etcd', source: 'etcd/index' }` to ENTRIES below.
 *   2. Run `npm run build`. It fails and prints the package.json fields it
 *      expects; `node scripts/build-package.mjs --write-package-json`
 *      writes them (`exports`, `typesVersions`, `main`, `types`, `bin`).
 *   3. Add `nestjs-master-election/etcd` to `paths` in tsconfig.json and to
 *      `resolve.alias` in vitest.config.ts (the build checks both).
 *   4. Run `npx vitest run test/packaging`: the packed package must load
 *      the entry with `import` and `require` (one copy) in the Nest 11
 *      CommonJS fixture.
 * A bin is added the same way, in BINS (its source must have a
 * `#!/usr/bin/env node` line and no top-level await).
 */

/** Package subpath → source module under lib/, without extension. */
export const ENTRIES = [
  { subpath: '.', source: 'index' },
  { subpath: './doozer', source: 'doozer/index' },
  { subpath: './election', source: 'entries/election' },
  { subpath: './etcd', source: 'backends/etcd/index' },
  { subpath: './live-view', source: 'live-view/index' },
  { subpath: './postgres', source: 'backends/postgres/index' },
  { subpath: './testing', source: 'testing/index' },
];

/** Bin name → source module under lib/, without extension. */
export const BINS = [
  { name: 'doozer-dev-server', source: 'bin/doozer-dev-server' },
  { name: 'elect-run-command', source: 'cli/elect-run-command' },
];

export const PACKAGE_NAME = 'nestjs-master-election';

/** The output of `tsc -p tsconfig.cjs.json`. */
export const CJS_DIR = 'dist/cjs';
/** The generated ESM facades. */
export const ESM_DIR = 'dist/esm';

/** The files of one entry, relative to the package root with a leading `./`. */
export function entryFiles(entry) {
  return {
    cjs: `./${CJS_DIR}/${entry.source}.js`,
    cjsTypes: `./${CJS_DIR}/${entry.source}.d.ts`,
    esm: `./${ESM_DIR}/${entry.source}.js`,
    esmTypes: `./${ESM_DIR}/${entry.source}.d.ts`,
  };
}

/** The specifier a consumer writes for an entry: `nestjs-master-election/doozer`. */
export function specifier(entry) {
  return entry.subpath === '.' ? PACKAGE_NAME : `${PACKAGE_NAME}/${entry.subpath.slice(2)}`;
}

/** The package.json fields that ENTRIES and BINS imply, in package.json's key order. */
export function expectedPackageFields() {
  const root = ENTRIES.find((e) => e.subpath === '.');
  const exports = {};
  for (const entry of ENTRIES) {
    const f = entryFiles(entry);
    exports[entry.subpath] = {
      import: { types: f.esmTypes, default: f.esm },
      require: { types: f.cjsTypes, default: f.cjs },
    };
  }
  exports['./package.json'] = './package.json';
  // `moduleResolution: node` (TypeScript's default for `"module": "commonjs"`)
  // reads neither `exports` nor conditions: `types` serves the root entry,
  // `typesVersions` the subpaths. Node and Jest use `exports`.
  const typesVersions = {
    '*': Object.fromEntries(
      ENTRIES.filter((e) => e.subpath !== '.').map((e) => [
        e.subpath.slice(2),
        [entryFiles(e).cjsTypes],
      ]),
    ),
  };
  return {
    main: entryFiles(root).cjs,
    types: entryFiles(root).cjsTypes,
    exports,
    typesVersions,
    bin: Object.fromEntries(BINS.map((b) => [b.name, `./${CJS_DIR}/${b.source}.js`])),
  };
}

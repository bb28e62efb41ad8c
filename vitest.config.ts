import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  // Nest needs legacy decorators with emitted design-time metadata.
  oxc: {
    decorator: {
      legacy: true,
      emitDecoratorMetadata: true,
    },
  },
  resolve: {
    alias: [
      { find: /^nestjs-master-election\/doozer$/, replacement: src('./lib/doozer/index.ts') },
      { find: /^nestjs-master-election\/election$/, replacement: src('./lib/entries/election.ts') },
      { find: /^nestjs-master-election\/etcd$/, replacement: src('./lib/backends/etcd/index.ts') },
      { find: /^nestjs-master-election\/live-view$/, replacement: src('./lib/live-view/index.ts') },
      {
        find: /^nestjs-master-election\/postgres$/,
        replacement: src('./lib/backends/postgres/index.ts'),
      },
      { find: /^nestjs-master-election\/testing$/, replacement: src('./lib/testing/index.ts') },
      { find: /^nestjs-master-election$/, replacement: src('./lib/index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    sequence: { hooks: 'stack' },
  },
});

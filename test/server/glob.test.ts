/** Glob compilation, with the reference's own translation and match tables. */
import { describe, expect, it } from 'vitest';
import { compileGlob, GlobError } from '../../lib/server/glob.js';

describe('globs', () => {
  it.each([
    ['/a/b', ['/a/b'], ['/a/c', '/a/b/c', '/a/bc', '/a']],
    ['/a?', ['/ab', '/ac', '/a.', '/a-'], ['/', '/abc', '/a', '/a/b']],
    ['/a*', ['/a', '/ab', '/abc'], ['/', '/ba', '/a/b']],
    ['/a**', ['/a', '/ab', '/abc', '/a/b', '/ab/c'], ['/', '/ba']],
    ['/*', ['/', '/a', '/abc'], ['/a/b']],
    ['/**', ['/', '/a', '/a/b/c'], []],
    ['/**/a', ['/x/a', '/x/y/a'], ['/a', '/x/b']],
    ['/*a/b', ['/a/b', '/xa/b'], ['/ax/b', '/a/c']],
    ['/a.b', ['/a.b'], ['/aXb']],
    ['/a-b', ['/a-b'], ['/a.b']],
    ['/', ['/'], ['/a']],
  ])('%s', (pattern, yes, no) => {
    const glob = compileGlob(pattern);
    for (const p of yes) expect(glob.match(p), `${pattern} matches ${p}`).toBe(true);
    for (const p of no) expect(glob.match(p), `${pattern} does not match ${p}`).toBe(false);
  });

  it.each([
    '',
    'a',
    'a/',
    '/ ',
    '/:',
    '//',
    '/a/',
    '/a+b',
    '/a^b',
    '/a$b',
    '/a[b',
    '/a]b',
    '/a(b',
    '/a)b',
    '/a世界',
    '/a=b',
  ])('rejects %j', (pattern) => {
    expect(() => compileGlob(pattern)).toThrow(GlobError);
    expect(() => compileGlob(pattern)).toThrow(`invalid glob pattern: ${pattern}`);
  });

  it('knows where a glob is rooted and how deep it reaches', () => {
    expect(compileGlob('/a/b')).toMatchObject({ literal: true, prefix: '/a/b', depth: 2 });
    expect(compileGlob('/a/*/c')).toMatchObject({ literal: false, prefix: '/a', depth: 3 });
    expect(compileGlob('/a/b*')).toMatchObject({ prefix: '/a', depth: 2 });
    expect(compileGlob('/**')).toMatchObject({ prefix: '', depth: undefined });
    expect(compileGlob('/x/**/y')).toMatchObject({ prefix: '/x', depth: undefined });
  });
});

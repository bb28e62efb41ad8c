import { describe, expect, it } from 'vitest';
import { explainBadPath, isValidPath } from '../../lib/wire/index.js';

describe('path rules', () => {
  it.each(['/', '/a', '/ns/service/master/test', '/a.b-c/D9'])('accepts %s', (p) => {
    expect(isValidPath(p)).toBe(true);
    expect(explainBadPath(p)).toBeUndefined();
  });
  it.each([
    ['', /empty/],
    ['a', /start with/],
    ['/a/', /end with/],
    ['/a//b', /empty component/],
    ['/a b', /" "/],
    ['/a=b', /"="/],
    ['/a_b', /"_"/],
  ])('rejects %j', (p, why) => {
    expect(isValidPath(p)).toBe(false);
    expect(explainBadPath(p)).toMatch(why);
  });
});

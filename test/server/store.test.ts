/**
 * The store and the waiter index against a brute-force model: random
 * writes (with every kind of rev), then every past rev in the history window
 * read back (files, directories, listings) and every waiter's answer checked
 * against a linear scan of all events.
 */
import { describe, expect, it } from 'vitest';
import { compileGlob, type Glob } from '../../lib/server/glob.js';
import {
  bodyBytes,
  Store,
  type Body,
  type Snapshot,
  type StoreEvent,
} from '../../lib/server/store.js';
import { WaiterIndex } from '../../lib/server/waiters.js';
import { rng } from '../support/random.js';

type Files = Map<string, { value: string; rev: number }>;

const NAMES = ['a', 'b', 'a-b', 'B'];
const PATHS: string[] = [];
for (const x of NAMES) {
  PATHS.push(`/${x}`);
  for (const y of NAMES.slice(0, 2)) {
    PATHS.push(`/${x}/${y}`);
    PATHS.push(`/${x}/${y}/c`);
  }
}
const GLOBS = ['/**', '/a/*', '/a/**', '/*/b', '/?', '/a', '/a/b/c', '/*-b/**', '/', '/B*'];

/** The directories of a model tree, each with its sorted entry names. */
function dirsOf(files: Files): Map<string, string[]> {
  const dirs = new Map<string, Set<string>>([['/', new Set()]]);
  for (const path of files.keys()) {
    const parts = path.slice(1).split('/');
    for (let i = 0; i < parts.length; i++) {
      const dir = i === 0 ? '/' : `/${parts.slice(0, i).join('/')}`;
      if (!dirs.has(dir)) dirs.set(dir, new Set());
      dirs.get(dir)!.add(parts[i]!);
    }
  }
  return new Map([...dirs].map(([d, names]) => [d, [...names].sort()]));
}

/** The reference rules, written plainly. */
function modelWrite(
  files: Files,
  path: string,
  rev: number,
  value: string | undefined,
  seqn: number,
): string | undefined {
  const dirs = dirsOf(files);
  const parts = path.slice(1).split('/');
  if (value !== undefined) {
    for (let i = 1; i < parts.length; i++) {
      if (files.has(`/${parts.slice(0, i).join('/')}`)) return 'NOTDIR';
    }
  }
  const current = dirs.has(path) ? -2 : (files.get(path)?.rev ?? 0);
  if (rev !== -1 && rev < current) return 'REV_MISMATCH';
  if (dirs.has(path)) return 'ISDIR';
  if (value === undefined) files.delete(path);
  else files.set(path, { value, rev: seqn });
  return undefined;
}

const text = (v: Body) => Buffer.from(bodyBytes(v)).toString();

describe('store against a model', () => {
  it.each([1, 2, 3, 4])('seed %i: every rev in the window reads as it was', (seed) => {
    const random = rng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const history = 40;
    const events: StoreEvent[] = [];
    const waiters = new WaiterIndex();
    const store = new Store(history, (e) => {
      events.push(e);
      waiters.dispatch(e);
    });
    const snapshots: Files[] = [new Map<string, { value: string; rev: number }>()];
    const expected: { rev: number; glob: Glob; got: StoreEvent[] }[] = [];
    // Views are kept and read again after later writes: they must still read as of their rev.
    const views = new Map<number, Snapshot>();

    for (let step = 0; step < 400; step++) {
      const model: Files = new Map(snapshots[store.rev]);
      const path = pick(PATHS);
      const fileRev = model.get(path)?.rev ?? 0;
      const rev = pick([
        0,
        -1,
        -2,
        -3,
        fileRev,
        fileRev,
        fileRev - 1,
        fileRev + 5,
        store.rev + 100,
      ]);
      const op = random();
      const seqn = store.rev + 1;
      if (op < 0.08) {
        store.nop();
      } else if (op < 0.7) {
        const value = `v${step}`;
        const result = store.set(path, rev, Buffer.from(value));
        const err = modelWrite(model, path, rev, value, seqn);
        expect(result.ok ? undefined : result.error, `SET ${path} ${rev}`).toBe(err);
        if (err) model.set('/ctl/err', { value: 'x', rev: seqn });
      } else {
        const result = store.del(path, rev);
        const err = modelWrite(model, path, rev, undefined, seqn);
        expect(result.ok ? undefined : result.error, `DEL ${path} ${rev}`).toBe(err);
        if (err) model.set('/ctl/err', { value: 'x', rev: seqn });
      }
      expect(store.rev).toBe(seqn);
      snapshots.push(model);

      // A waiter from a random rev, answered from history or later, as WAIT does.
      const glob = compileGlob(pick(GLOBS));
      const from = Math.max(store.oldestRev, store.rev - Math.floor(random() * 10) + 3);
      const got: StoreEvent[] = [];
      const past = from <= store.rev ? store.firstMatch(glob, from) : undefined;
      if (past) got.push(past);
      else waiters.add({ rev: from, glob, fire: (e) => got.push(e) }, store.rev);
      expected.push({ rev: from, glob, got });

      // Every rev still in the window reads as the model had it.
      if (step % 5 === 0) {
        for (let r = store.oldestRev; r <= store.rev; r++) {
          const then = snapshots[r]!;
          const view = views.get(r) ?? store.at(r);
          views.set(r, view);
          const dirs = dirsOf(then);
          const actual: Record<string, unknown> = {};
          const want: Record<string, unknown> = {};
          for (const p of [...PATHS, '/', '/ctl', '/ctl/err']) {
            const file = view.file(p);
            const list = view.list(p);
            const body = (f: { rev: number } | undefined, v: string | undefined) =>
              f && { rev: f.rev, value: p === '/ctl/err' ? '' : v };
            actual[p] = {
              file: body(file, file && text(file.value)),
              at: store.fileAt(p, r)?.rev,
              dir: view.isDir(p),
              list,
              entries: view.entries(p),
              each: [-1, ...list.keys(), list.length].map((k) => view.entry(p, k)),
            };
            const then_ = then.get(p);
            want[p] = {
              file: body(then_, then_?.value),
              at: then_?.rev,
              dir: dirs.has(p),
              list: dirs.get(p) ?? [],
              entries: dirs.get(p)?.length ?? 0,
              each: [undefined, ...(dirs.get(p) ?? []), undefined],
            };
          }
          expect(actual, `the tree at rev ${r}`).toEqual(want);
        }
      }
    }
    // Each waiter got exactly the first matching event at or after its rev.
    for (const w of expected) {
      const first = events.find((e) => e.rev >= w.rev && w.glob.match(e.path));
      expect(
        w.got.map((e) => e.rev),
        `${w.glob.pattern} from ${w.rev}`,
      ).toEqual(first ? [first.rev] : []);
    }
    expect(store.stats.historyEvents).toBe(history);
    expect(waiters.size).toBe(expected.filter((w) => w.got.length === 0).length);
  });

  it.each([5, 6])(
    'seed %i: a wide directory with heavy churn lists as it was at every rev',
    (seed) => {
      const random = rng(seed);
      const history = 60;
      const store = new Store(history);
      const names = Array.from({ length: 300 }, (_, i) => `n${(i * 7919) % 1000}`);
      const model: Set<string>[] = [new Set()];
      for (let step = 0; step < 600; step++) {
        const now = new Set(model[store.rev]);
        const name = names[Math.floor(random() * names.length)]!;
        if (random() < 0.6) {
          store.set(`/w/${name}`, -1, Buffer.from('x'));
          now.add(name);
        } else {
          store.del(`/w/${name}`, -1);
          now.delete(name);
        }
        model.push(now);
        if (step % 50 !== 49) continue;
        for (let r = store.oldestRev; r <= store.rev; r++) {
          const want = [...model[r]!].sort();
          const view = store.at(r);
          expect(view.list('/w'), `list at ${r}`).toEqual(want);
          expect(view.entries('/w')).toBe(want.length);
          expect(view.isDir('/w')).toBe(want.length > 0);
          const got = Array.from({ length: want.length + 1 }, (_, k) => view.entry('/w', k));
          expect(got, `entries at ${r}`).toEqual([...want, undefined]);
        }
      }
    },
  );

  it('keeps memory bounded: history holds at most `history` revs', () => {
    const store = new Store(100);
    for (let i = 0; i < 10_000; i++) store.set(`/f${i % 7}`, -1, Buffer.from(String(i)));
    expect(store.stats).toEqual({ files: 7, historyEvents: 100 });
    expect(store.oldestRev).toBe(9901);
    // The directory log is trimmed with the history.
    for (let i = 0; i < 10_000; i++) {
      store.set(`/d${i % 13}/f${i}`, -1, Buffer.from('x'));
      store.del(`/d${i % 13}/f${i}`, -1);
    }
    expect(store.dirs.changes).toBeLessThanOrEqual(4 * 100);
  });
});

/**
 * The conformance table: one row per behaviour of the protocol page
 * (/work/shared/doozer-protocol.md, "The Doozer client protocol, as the
 * reference server behaves"), quoted in `doc`, with the request(s) and the
 * expected answer in `run`.
 *
 * Rows run against any server (see target.ts): they write only below their
 * own unique prefix, never assume absolute or consecutive revs (a real node
 * heartbeats, other clients write), and reason with revs they read. Most go
 * through DoozerClient; what the client cannot say on purpose (bad paths it
 * refuses to send, missing fields, unknown verbs, exact absent fields) goes
 * through a raw connection.
 */
import { expect } from 'vitest';
import {
  DoozerError,
  DoozerPermissionError,
  DoozerTooLateError,
  type DoozerClient,
} from '../../lib/doozer/index.js';
import type { PlainResponse, RawDoozerConnection, RawRequest } from '../../lib/testing/index.js';
import { Verb } from '../../lib/wire/index.js';
import type { Needs, Server } from './target.js';

const { GET, SET, DEL, REV, WAIT, NOP, WALK, GETDIR, STAT, SELF } = Verb;

/** What a row runs with. */
export interface RowContext {
  readonly server: Server;
  /** A client with read-write access. */
  readonly client: DoozerClient;
  /** A path below this row's own prefix. */
  p(...names: string[]): string;
  /** A raw connection to the same node, after ACCESS with `secret` (default: the rw secret; `null`: none). */
  raw(secret?: string | null): Promise<RawDoozerConnection>;
  /** Another client, after ACCESS with `secret` (default: the rw secret; `null`: none). */
  connect(secret?: string | null): Promise<DoozerClient>;
  /** Skips the row, for a reason found while it runs. */
  skip(reason: string): never;
}

/** One behaviour of the page. */
export interface Row {
  /** The page's words for it. */
  readonly doc: string;
  readonly needs?: Needs;
  run(t: RowContext): Promise<void>;
}

const LONG = { timeoutMs: 20_000 };

/** Expects `promise` to reject with a DoozerError of `code` (and `detail`). */
async function fails(
  promise: Promise<unknown>,
  code: string,
  detail?: string | RegExp,
): Promise<DoozerError> {
  let error: unknown;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  expect(error, `expected ${code}`).toBeInstanceOf(DoozerError);
  const e = error as DoozerError;
  expect(e.code).toBe(code);
  if (typeof detail === 'string') expect(e.detail).toBe(detail);
  else if (detail) expect(e.detail).toMatch(detail);
  return e;
}

const DENIED = { err: 'OTHER', detail: 'permission denied' };

async function denied(promise: Promise<unknown>): Promise<void> {
  const e = await fails(promise, 'OTHER', 'permission denied');
  expect(e).toBeInstanceOf(DoozerPermissionError);
}

/**
 * Asserts that `answer` (sent on `via`) is still unanswered: a server
 * handles one connection's requests in order, so once a REV sent after it
 * is answered, an answer to it would already be here.
 */
async function stillWaiting(
  via: DoozerClient | RawDoozerConnection,
  answer: Promise<unknown>,
): Promise<void> {
  let settled = false;
  answer.then(
    () => (settled = true),
    () => (settled = true),
  );
  if ('call' in via) await via.call({ verb: REV });
  else await via.rev();
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  expect(settled, 'the request should still be waiting').toBe(false);
}

/** Writes NOPs until the store rev is at least `rev`. */
async function advanceTo(client: DoozerClient, rev: number): Promise<void> {
  while ((await client.rev()) < rev) await client.nop();
}

/** True when `request` fails with TOO_LATE, false when it is answered. */
async function tooLate(request: Promise<unknown>): Promise<boolean> {
  try {
    await request;
    return false;
  } catch (e) {
    if (e instanceof DoozerTooLateError) return true;
    throw e;
  }
}

/**
 * Writes NOPs until `rev` is more than the server's history behind, then
 * retries `request` (pinned to `rev`) until it answers TOO_LATE: the
 * reference trims history about once a second, so a rev that just fell out
 * may answer for a moment. Fails after 30 s.
 */
async function pushOutOfHistory(
  t: RowContext,
  rev: number,
  request: () => Promise<unknown>,
): Promise<void> {
  await advanceTo(t.client, rev + t.server.history + 10);
  const deadline = Date.now() + 30_000;
  while (!(await tooLate(request()))) {
    if (Date.now() > deadline) expect.fail(`rev ${rev} still answers 30 s after it left history`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs `check` until it holds once (at most 3 tries): for "no rev consumed" against a heartbeating node. */
async function someTry(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 3; i++) if (await check()) return;
  expect.fail(what);
}

/** The texts a failed write leaves in /ctl/err (Go's error strings). */
const ERR_TEXT = {
  REV_MISMATCH: 'rev mismatch',
  ISDIR: 'is a directory',
  NOTDIR: 'not a directory',
};

type Failure = keyof typeof ERR_TEXT;

/** The failed writes the page names: SET's three, and DEL's stale rev and directory. */
const FAILURES = [
  ['SET', 'REV_MISMATCH'],
  ['SET', 'ISDIR'],
  ['SET', 'NOTDIR'],
  ['DEL', 'REV_MISMATCH'],
  ['DEL', 'ISDIR'],
] as const;

/** Prepares `kind` below the row's prefix; returns the `verb` write that will fail with it. */
async function prepareFailure(
  t: RowContext,
  verb: 'SET' | 'DEL',
  kind: Failure,
): Promise<() => Promise<unknown>> {
  const f = t.p('f');
  const r = await t.client.set(f, 0, 'file');
  const [path, rev] =
    kind === 'REV_MISMATCH' ? [f, r - 1] : kind === 'ISDIR' ? [t.p(), -1] : [t.p('f', 'child'), -1];
  return verb === 'SET' ? () => t.client.set(path, rev, 'lost') : () => t.client.del(path, rev);
}

async function rawNames(
  raw: RawDoozerConnection,
  verb: Verb,
  path: string,
  rev?: number,
): Promise<PlainResponse[]> {
  const out: PlainResponse[] = [];
  for (let offset = 0; ; offset++) {
    const res = await raw.call({ verb, path, offset, rev });
    if (res.err) {
      expect(res.err).toBe('RANGE');
      return out;
    }
    out.push(res);
  }
}

/**
 * Sends the read `request(rev)` pinned to a rev a few ahead of the store,
 * checks that it waits, then writes `write(writer, 0)`, `write(writer, 1)`,
 * ... (each answering its rev) until the store passes that rev. The answer
 * must be exactly what the same read pinned to that (now past) rev gives.
 */
async function futureRead(
  t: RowContext,
  request: (rev: number) => RawRequest,
  write: (writer: DoozerClient, n: number) => Promise<number>,
): Promise<PlainResponse> {
  const raw = await t.raw();
  const target = (await t.client.rev()) + 5;
  const answer = raw.call({ ...request(target), tag: 1 });
  await stillWaiting(raw, answer);
  const writer = await t.connect();
  for (let n = 0, last = 0; last < target; n++) last = await write(writer, n);
  const got = await answer;
  expect(got).toEqual(await raw.call({ ...request(target), tag: 1 }));
  return got;
}

async function walkPaths(t: RowContext, glob: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of t.client.walk(glob, await t.client.rev())) out.push(e.path);
  return out;
}

/** The table, by section of the page. */
export const SECTIONS: Record<string, Row[]> = {
  Framing: [
    {
      doc: 'Requests carry a client-chosen tag; the response echoes it.',
      async run(t) {
        const raw = await t.raw();
        for (const tag of [0, 1, 4242, 0x7fffffff, -5]) {
          expect((await raw.call({ tag, verb: REV })).tag).toBe(tag);
        }
      },
    },
    {
      doc: 'Any number of requests may be outstanding on one connection (pipelining); responses come back in any order.',
      async run(t) {
        const raw = await t.raw();
        const from = (await t.client.rev()) + 1;
        raw.send({ tag: 1, verb: WAIT, path: t.p('x'), rev: from });
        raw.send({ tag: 2, verb: GET, path: t.p('x') });
        raw.send({ tag: 3, verb: REV });
        expect((await raw.next()).tag).toBe(2);
        expect((await raw.next()).tag).toBe(3);
        const r = await t.client.set(t.p('x'), 0, 'now');
        expect(await raw.next()).toMatchObject({ tag: 1, path: t.p('x'), rev: r, value: 'now' });
      },
    },
    {
      doc: 'There is no CANCEL verb: a WAIT on a quiet path keeps its tag until it is answered.',
      async run(t) {
        const raw = await t.raw();
        const waiting = raw.call({
          tag: 77,
          verb: WAIT,
          path: t.p('quiet'),
          rev: (await t.client.rev()) + 1,
        });
        await stillWaiting(raw, waiting);
        const r = await t.client.set(t.p('quiet'), -1, 'loud');
        expect(await waiting).toMatchObject({ tag: 77, rev: r });
      },
    },
  ],

  'Data model': [
    {
      doc: 'A path is `/` or `/` followed by components of `[a-zA-Z0-9.-]+` joined by `/`. No trailing slash, no spaces, no `=`.',
      async run(t) {
        expect(await t.client.set(t.p('Ok.name-9', 'Z'), 0, 'x')).toBeGreaterThan(0);
        const raw = await t.raw();
        for (const bad of ['/', '/x/', '//x', '/a b', '/a=b', '/a_b', '/ä']) {
          const path = t.p().concat(bad);
          expect(await raw.call({ tag: 1, verb: SET, path, rev: -1, value: 'x' }), path).toEqual({
            tag: 1,
            err: 'BAD_PATH',
          });
        }
      },
    },
    {
      doc: 'One store-wide revision counter ("rev"). Every mutation gets the next rev. Each file remembers the rev of its last change.',
      async run(t) {
        const a = await t.client.set(t.p('a'), 0, '1');
        const b = await t.client.set(t.p('b'), 0, '2');
        expect(b).toBeGreaterThan(a);
        expect((await t.client.get(t.p('a'))).rev).toBe(a);
        expect(await t.client.rev()).toBeGreaterThanOrEqual(b);
      },
    },
    {
      doc: 'Revs a client sees are NOT consecutive: a real server writes its own files under `/ctl` about once a second per node (heartbeats).',
      async run(t) {
        const from = (await t.client.rev()) + 1;
        const ev = await t.client.wait('/ctl/**', from, LONG);
        expect(ev.rev).toBeGreaterThanOrEqual(from);
        expect(ev.path).toMatch(/^\/ctl\//);
      },
    },
    ...FAILURES.map(([verb, kind]): Row => ({
      doc: `Every failed write (${verb} ${kind}) also consumes a rev and is recorded in \`/ctl/err\`.`,
      async run(t) {
        const failingWrite = await prepareFailure(t, verb, kind);
        const before = await t.client.rev();
        await fails(failingWrite(), kind);
        const after = await t.client.rev();
        expect(after).toBeGreaterThan(before);
        const ev = await t.client.wait('/ctl/err', before + 1, LONG);
        expect(ev.isSet).toBe(true);
        expect(ev.rev).toBeLessThanOrEqual(after);
        expect(ev.text).toBe(ERR_TEXT[kind]);
      },
    })),
    {
      doc: 'A fresh node is at about rev 58 before the first client write.',
      needs: { fresh: true },
      async run(t) {
        const rev = await t.client.rev();
        expect(rev).toBeGreaterThanOrEqual(50);
        expect(rev).toBeLessThanOrEqual(70);
      },
    },
    {
      doc: 'Special revs in requests: `0` = "the file must be missing", `-1` = unconditional (clobber). `-2` is how a directory reports its rev.',
      async run(t) {
        const r = await t.client.set(t.p('f'), 0, 'created');
        await fails(t.client.set(t.p('f'), 0, 'again'), 'REV_MISMATCH');
        expect(await t.client.set(t.p('f'), -1, 'clobbered')).toBeGreaterThan(r);
        await t.client.set(t.p('d', 'x'), -1, '');
        expect(await t.client.stat(t.p('d'))).toMatchObject({ rev: -2, isDir: true });
      },
    },
    {
      doc: 'Directories exist implicitly while they hold files.',
      async run(t) {
        const r = await t.client.set(t.p('d', 'e', 'f'), 0, '');
        expect(await t.client.stat(t.p('d', 'e'))).toMatchObject({ rev: -2, len: 1 });
        await t.client.del(t.p('d', 'e', 'f'), r);
        expect(await t.client.stat(t.p('d'))).toMatchObject({ rev: 0, len: 0, isDir: false });
        await fails(t.client.getdir(t.p('d'), await t.client.rev()), 'NOENT');
      },
    },
    {
      doc: 'History: the server keeps the last N revs. A request pinned to an older rev gets TOO_LATE.',
      needs: { history: 20 },
      async run(t) {
        const old = await t.client.set(t.p('f'), 0, 'old');
        await pushOutOfHistory(t, old, () => t.client.wait(t.p('f'), old, LONG));
        await fails(t.client.get(t.p('f'), old), 'TOO_LATE');
        // The last revs still answer.
        const recent = (await t.client.rev()) - Math.min(10, Math.floor(t.server.history / 2));
        expect((await t.client.get(t.p('f'), recent)).text).toBe('old');
      },
    },
  ],

  'REV, SELF, NOP': [
    {
      doc: 'REV -> rev: the current store rev.',
      async run(t) {
        const r = await t.client.set(t.p('f'), 0, '');
        expect(await t.client.rev()).toBeGreaterThanOrEqual(r);
      },
    },
    {
      doc: "SELF -> value: the server node's id.",
      async run(t) {
        const id = await t.client.self();
        expect(id).toMatch(/^[a-zA-Z0-9.-]+$/);
        if (t.server.embedded) expect(id).toBe(t.server.embedded.nodeId);
        const raw = await t.raw(null);
        expect(await raw.call({ tag: 1, verb: SELF })).toEqual({ tag: 1, value: id });
      },
    },
    {
      doc: 'NOP -> empty answer. Consumes a rev (an event at path `/` with flags 0, as doozerd records it).',
      async run(t) {
        const raw = await t.raw();
        const before = (await raw.call({ verb: REV })).rev!;
        expect(await raw.call({ tag: 5, verb: NOP })).toEqual({ tag: 5 });
        const after = (await raw.call({ verb: REV })).rev!;
        // The glob '/' matches only path '/', which no write (a heartbeat, say) touches.
        const ev = await raw.call({ tag: 6, verb: WAIT, path: '/', rev: before + 1 });
        expect(ev).toMatchObject({ tag: 6, path: '/', value: '' });
        expect(ev.flags ?? 0).toBe(0);
        expect(ev.rev).toBeGreaterThan(before);
        expect(ev.rev).toBeLessThanOrEqual(after);
      },
    },
  ],

  GET: [
    {
      doc: 'rev in the answer is the FILE rev, not the store rev.',
      async run(t) {
        const r = await t.client.set(t.p('f'), 0, 'v');
        await t.client.nop();
        const f = await t.client.get(t.p('f'));
        expect([f.rev, f.text]).toEqual([r, 'v']);
        expect(await t.client.rev()).toBeGreaterThan(r);
      },
    },
    {
      doc: 'Missing file: success with rev 0 and an empty value (no NOENT).',
      async run(t) {
        const raw = await t.raw();
        expect(await raw.call({ tag: 1, verb: GET, path: t.p('missing') })).toEqual({
          tag: 1,
          rev: 0,
          value: '',
        });
        const f = await t.client.get(t.p('missing', 'deeper'));
        expect([f.rev, f.value.length]).toEqual([0, 0]);
      },
    },
    {
      doc: 'A bad path on GET looks exactly like a missing file.',
      async run(t) {
        const raw = await t.raw();
        // Not '': doozerd 0.9 would panic slicing it (store.split does path[1:]).
        for (const path of [t.p('a b'), `${t.p()}/`, t.p('a=b'), 'no-slash']) {
          expect(await raw.call({ tag: 1, verb: GET, path }), path).toEqual({
            tag: 1,
            rev: 0,
            value: '',
          });
        }
      },
    },
    {
      doc: 'Directory: ISDIR.',
      async run(t) {
        await t.client.set(t.p('d', 'f'), 0, '');
        await fails(t.client.get(t.p('d')), 'ISDIR');
        await fails(t.client.get('/'), 'ISDIR');
      },
    },
    {
      doc: 'With a past rev: the file as of that store rev (rev 0 if it did not exist yet).',
      async run(t) {
        const r1 = await t.client.set(t.p('f'), 0, 'one');
        const r2 = await t.client.set(t.p('f'), r1, 'two');
        await t.client.del(t.p('f'), r2);
        const at = async (rev: number) => {
          const f = await t.client.get(t.p('f'), rev);
          return [f.rev, f.text];
        };
        expect(await at(r1 - 1)).toEqual([0, '']);
        expect(await at(r1)).toEqual([r1, 'one']);
        expect(await at(r2 - 1)).toEqual([r1, 'one']);
        expect(await at(r2)).toEqual([r2, 'two']);
        expect(await at(await t.client.rev())).toEqual([0, '']);
      },
    },
    {
      doc: 'With a future rev: the request blocks until the store reaches it.',
      async run(t) {
        const target = (await t.client.rev()) + 5;
        const answer = t.client.get(t.p('f'), target);
        await stillWaiting(t.client, answer);
        const writer = await t.connect();
        let last = 0;
        while (last < target) last = await writer.set(t.p('f'), -1, `at ${last}`);
        const f = await answer;
        expect(f.rev).toBeLessThanOrEqual(target);
        expect(f.rev).toBeGreaterThan(0);
        expect(f.text).toBe((await t.client.get(t.p('f'), target)).text);
      },
    },
  ],

  SET: [
    {
      doc: 'Succeeds when request rev >= file rev (a missing file has file rev 0). So rev 0 means create-only.',
      async run(t) {
        expect(await t.client.set(t.p('f'), 0, 'a')).toBeGreaterThan(0);
        await fails(t.client.set(t.p('f'), 0, 'b'), 'REV_MISMATCH');
        expect((await t.client.get(t.p('f'))).text).toBe('a');
      },
    },
    {
      doc: 'The exact current file rev succeeds, and SET answers the new file rev.',
      async run(t) {
        const r1 = await t.client.set(t.p('f'), 0, 'a');
        const r2 = await t.client.set(t.p('f'), r1, 'b');
        expect(r2).toBeGreaterThan(r1);
        expect((await t.client.get(t.p('f'))).rev).toBe(r2);
      },
    },
    {
      doc: 'Any later rev, even far in the future, succeeds.',
      async run(t) {
        const r1 = await t.client.set(t.p('f'), 0, 'a');
        const r2 = await t.client.set(t.p('f'), r1 + 1, 'b');
        const r3 = await t.client.set(t.p('f'), r2 + 1_000_000_000, 'c');
        expect((await t.client.get(t.p('f'))).rev).toBe(r3);
        expect(await t.client.set(t.p('g'), 123_456_789, 'new')).toBeGreaterThan(r3);
      },
    },
    {
      doc: '-1 always succeeds and creates.',
      async run(t) {
        const r1 = await t.client.set(t.p('f'), -1, 'created');
        const r2 = await t.client.set(t.p('f'), -1, 'clobbered');
        expect(r2).toBeGreaterThan(r1);
        expect((await t.client.get(t.p('f'))).text).toBe('clobbered');
      },
    },
    ...(
      [
        ['rev 0 on an existing file', () => 0],
        ['a stale rev', (r: number) => r - 1],
        ['-2', () => -2],
        ['another negative', () => -3],
      ] as const
    ).map(([what, rev]): Row => ({
      doc: `${what[0]!.toUpperCase()}${what.slice(1)}: REV_MISMATCH.`,
      async run(t) {
        const r = await t.client.set(t.p('f'), 0, 'kept');
        await fails(t.client.set(t.p('f'), rev(r), 'lost'), 'REV_MISMATCH');
        expect((await t.client.get(t.p('f'))).text).toBe('kept');
      },
    })),
    {
      doc: 'SET with -2 on a missing file: REV_MISMATCH (a missing file has file rev 0).',
      async run(t) {
        await fails(t.client.set(t.p('missing'), -2, 'x'), 'REV_MISMATCH');
        expect((await t.client.get(t.p('missing'))).rev).toBe(0);
      },
    },
    {
      doc: 'On a directory: ISDIR (even with -1).',
      async run(t) {
        await t.client.set(t.p('d', 'f'), 0, '');
        for (const rev of [-1, 0, 1_000_000]) await fails(t.client.set(t.p('d'), rev, ''), 'ISDIR');
      },
    },
    {
      doc: 'Below a file (`/f/child`): NOTDIR.',
      async run(t) {
        await t.client.set(t.p('f'), 0, '');
        await fails(t.client.set(t.p('f', 'child'), -1, ''), 'NOTDIR');
        await fails(t.client.set(t.p('f', 'child', 'deeper'), 0, ''), 'NOTDIR');
      },
    },
    {
      doc: 'Bad path: BAD_PATH (no rev consumed).',
      async run(t) {
        const raw = await t.raw();
        await someTry(async () => {
          const before = (await raw.call({ verb: REV })).rev;
          expect(
            (await raw.call({ verb: SET, path: `${t.p()}/bad path`, rev: -1, value: '' })).err,
          ).toBe('BAD_PATH');
          return (await raw.call({ verb: REV })).rev === before;
        }, 'a BAD_PATH SET consumed a rev');
      },
    },
    {
      doc: 'Values are arbitrary bytes.',
      async run(t) {
        const bytes = Uint8Array.from({ length: 512 }, (_, i) => (i * 7) % 256);
        const r = await t.client.set(t.p('bin'), 0, bytes);
        const f = await t.client.get(t.p('bin'));
        expect(f.rev).toBe(r);
        expect(Buffer.from(f.value).equals(Buffer.from(bytes))).toBe(true);
        await t.client.set(t.p('empty'), 0, new Uint8Array(0));
        expect((await t.client.stat(t.p('empty'))).len).toBe(0);
      },
    },
  ],

  DEL: [
    {
      doc: 'DEL path, rev -> empty answer (no rev field).',
      async run(t) {
        const r = await t.client.set(t.p('f'), 0, '');
        const raw = await t.raw();
        expect(await raw.call({ tag: 3, verb: DEL, path: t.p('f'), rev: r })).toEqual({ tag: 3 });
        expect((await t.client.get(t.p('f'))).rev).toBe(0);
      },
    },
    {
      doc: 'Same rule as SET: rev >= file rev, or -1. Stale rev or rev 0 on an existing file: REV_MISMATCH.',
      async run(t) {
        const r = await t.client.set(t.p('f'), 0, '');
        await fails(t.client.del(t.p('f'), 0), 'REV_MISMATCH');
        await fails(t.client.del(t.p('f'), r - 1), 'REV_MISMATCH');
        await t.client.del(t.p('f'), r);
        const r2 = await t.client.set(t.p('g'), 0, '');
        await t.client.del(t.p('g'), r2 + 1_000_000);
        await t.client.set(t.p('h'), 0, '');
        await t.client.del(t.p('h'), -1);
        for (const p of ['f', 'g', 'h']) expect((await t.client.get(t.p(p))).rev).toBe(0);
      },
    },
    {
      doc: 'Deleting a missing file succeeds (no NOENT).',
      async run(t) {
        await t.client.del(t.p('never-was'), 0);
        await t.client.del(t.p('never-was'), -1);
        await t.client.del(t.p('no', 'such', 'dir'), 5);
      },
    },
    {
      doc: 'DEL of a directory: ISDIR.',
      async run(t) {
        await t.client.set(t.p('d', 'f'), 0, '');
        await fails(t.client.del(t.p('d'), -1), 'ISDIR');
        expect(await t.client.stat(t.p('d'))).toMatchObject({ rev: -2, len: 1 });
      },
    },
  ],

  WAIT: [
    {
      doc: 'Answers with the FIRST change to a file matching glob at a rev >= the request rev. flags 4 = set, 8 = del (value empty for a del).',
      async run(t) {
        const ra = await t.client.set(t.p('a'), 0, 'A');
        const rb = await t.client.set(t.p('b'), 0, 'B');
        await t.client.del(t.p('a'), ra);
        const set = await t.client.wait(t.p('*'), ra, LONG);
        expect(set).toMatchObject({
          path: t.p('a'),
          rev: ra,
          text: 'A',
          flags: 4,
          isSet: true,
          isDel: false,
        });
        const next = await t.client.wait(t.p('*'), ra + 1, LONG);
        expect(next).toMatchObject({ path: t.p('b'), rev: rb, text: 'B', flags: 4 });
        const del = await t.client.wait(t.p('a'), ra + 1, LONG);
        expect(del).toMatchObject({
          path: t.p('a'),
          text: '',
          flags: 8,
          isSet: false,
          isDel: true,
        });
        expect(del.rev).toBeGreaterThan(rb);
      },
    },
    {
      doc: 'A rev already in the past (within history) is answered at once from history.',
      async run(t) {
        const r = await t.client.set(t.p('f'), 0, 'past');
        await t.client.set(t.p('f'), r, 'later');
        // No write follows: the answer can only come from history.
        expect(await t.client.wait(t.p('f'), r, LONG)).toMatchObject({ rev: r, text: 'past' });
      },
    },
    {
      doc: 'rev <= 0 is treated as 1.',
      async run(t) {
        const outcome = async (rev: number) => {
          try {
            const ev = await t.client.wait('/**', rev, LONG);
            return `${ev.rev} ${ev.path}`;
          } catch (e) {
            if (e instanceof DoozerTooLateError) return 'TOO_LATE';
            throw e;
          }
        };
        // Once rev 1 left history every outcome is TOO_LATE, which proves nothing.
        const skipUnlessRevOneAnswers = async () => {
          if ((await outcome(1)) === 'TOO_LATE') {
            t.skip("rev 1 is no longer in this server's history");
          }
        };
        await skipUnlessRevOneAnswers();
        const outcomes = [await outcome(1), await outcome(0), await outcome(-7)];
        if (outcomes.includes('TOO_LATE')) await skipUnlessRevOneAnswers(); // it left meanwhile
        expect(outcomes[0]).toMatch(/^\d+ \//);
        expect(outcomes.slice(1)).toEqual([outcomes[0], outcomes[0]]);
      },
    },
    {
      doc: 'A future rev blocks; changes made below that rev are never reported, even if they happen while it waits.',
      async run(t) {
        const from = (await t.client.rev()) + 30;
        const waiter = await t.connect();
        const answer = waiter.wait(t.p('f'), from, LONG);
        const early = await t.client.set(t.p('f'), 0, 'early');
        expect(early).toBeLessThan(from);
        await stillWaiting(waiter, answer);
        await advanceTo(t.client, from);
        const late = await t.client.set(t.p('f'), early, 'late');
        expect(await answer).toMatchObject({ rev: late, text: 'late' });
      },
    },
    {
      doc: 'Older than history: TOO_LATE.',
      needs: { history: 20 },
      async run(t) {
        const old = await t.client.rev();
        await pushOutOfHistory(t, old, () => t.client.wait('/**', old, LONG));
        await fails(t.client.wait('/**', old - 1, LONG), 'TOO_LATE');
      },
    },
    {
      doc: 'Bad glob: OTHER with detail "invalid glob pattern: ...".',
      async run(t) {
        for (const glob of ['no-slash', `${t.p()}/`, `${t.p()}/a b`, `${t.p()}/[ab]`]) {
          await fails(t.client.wait(glob, 1, LONG), 'OTHER', /^invalid glob pattern/);
        }
      },
    },
    {
      doc: 'To follow a path: WAIT from rev R, handle the event at rev E, WAIT again from E + 1.',
      async run(t) {
        const from = (await t.client.rev()) + 1;
        const writer = await t.connect();
        const ac = new AbortController();
        const seen: string[] = [];
        const following = (async () => {
          for await (const ev of t.client.watch(t.p('**'), from, { signal: ac.signal })) {
            seen.push(`${ev.path.slice(t.p().length)} ${ev.isDel ? 'del' : ev.text}`);
            if (seen.length === 4) ac.abort();
          }
        })();
        const r = await writer.set(t.p('x'), 0, '1');
        await writer.set(t.p('y', 'z'), 0, '2');
        await writer.set(t.p('x'), r, '3');
        await writer.del(t.p('y', 'z'), -1);
        await following;
        expect(seen).toEqual(['/x 1', '/y/z 2', '/x 3', '/y/z del']);
      },
    },
  ],

  STAT: [
    {
      doc: 'File: file rev and length in bytes.',
      async run(t) {
        const r = await t.client.set(t.p('f'), 0, 'héllo');
        expect(await t.client.stat(t.p('f'))).toMatchObject({ rev: r, len: 6, isDir: false });
        expect(await t.client.stat(t.p('f'), r - 1)).toMatchObject({ rev: 0, len: 0 });
      },
    },
    {
      doc: 'Directory: rev -2 and number of entries.',
      async run(t) {
        await t.client.set(t.p('d', 'a'), 0, '');
        await t.client.set(t.p('d', 'b', 'c'), 0, '');
        await t.client.set(t.p('d', 'b', 'd'), 0, '');
        expect(await t.client.stat(t.p('d'))).toMatchObject({ rev: -2, len: 2, isDir: true });
      },
    },
    {
      doc: 'STAT path [rev]: with a past rev, the answer as of that store rev (as GET).',
      async run(t) {
        const r1 = await t.client.set(t.p('d', 'f'), 0, 'one');
        const r2 = await t.client.set(t.p('d', 'f'), r1, 'three');
        const r3 = await t.client.set(t.p('d', 'g'), 0, '');
        await t.client.del(t.p('d', 'f'), r2);
        const raw = await t.raw();
        const stat = (path: string, rev: number) => raw.call({ tag: 1, verb: STAT, path, rev });
        expect(await stat(t.p('d', 'f'), r1 - 1)).toEqual({ tag: 1, rev: 0, len: 0 });
        expect(await stat(t.p('d', 'f'), r1)).toEqual({ tag: 1, rev: r1, len: 3 });
        expect(await stat(t.p('d', 'f'), r3)).toEqual({ tag: 1, rev: r2, len: 5 });
        expect(await stat(t.p('d'), r2)).toEqual({ tag: 1, rev: -2, len: 1 });
        expect(await stat(t.p('d'), r3)).toEqual({ tag: 1, rev: -2, len: 2 });
        const now = await t.client.rev();
        expect(await stat(t.p('d', 'f'), now)).toEqual({ tag: 1, rev: 0, len: 0 });
        expect(await stat(t.p('d'), now)).toEqual({ tag: 1, rev: -2, len: 1 });
      },
    },
    {
      doc: 'STAT path [rev]: with a future rev, the request blocks until the store reaches it (as GET).',
      async run(t) {
        const got = await futureRead(
          t,
          (rev) => ({ verb: STAT, path: t.p('f'), rev }),
          (writer, n) => writer.set(t.p('f'), -1, 'x'.repeat(n + 1)),
        );
        expect(got.rev).toBeGreaterThan(0);
        expect(got.len).toBeGreaterThan(0);
      },
    },
    {
      doc: 'Missing file, bad path or no path: rev 0, len 0, no error.',
      async run(t) {
        const raw = await t.raw();
        for (const path of [t.p('missing'), `${t.p()}/`, t.p('a b'), undefined]) {
          expect(await raw.call({ tag: 2, verb: STAT, path }), String(path)).toEqual({
            tag: 2,
            rev: 0,
            len: 0,
          });
        }
      },
    },
  ],

  GETDIR: [
    {
      doc: 'The entry name (base name only) at that offset in sorted order, one per request.',
      async run(t) {
        for (const n of ['b', 'a-c', 'a', 'B']) await t.client.set(t.p('d', n), 0, '');
        await t.client.set(t.p('d', 'a', 'x'), -1, '').catch(() => undefined); // /a is a file: NOTDIR
        await t.client.set(t.p('d', 'z', 'x'), 0, '');
        const raw = await t.raw();
        const names = await rawNames(raw, GETDIR, t.p('d'));
        expect(names.map((r) => r.path)).toEqual(['B', 'a', 'a-c', 'b', 'z']);
        expect(await t.client.getdir(t.p('d'), await t.client.rev())).toEqual([
          'B',
          'a',
          'a-c',
          'b',
          'z',
        ]);
      },
    },
    {
      doc: 'GETDIR path, rev, offset: with a past rev, the directory as of that store rev (as GET).',
      async run(t) {
        const ra = await t.client.set(t.p('d', 'a'), 0, '');
        const rb = await t.client.set(t.p('d', 'b'), 0, '');
        await t.client.del(t.p('d', 'a'), ra);
        const raw = await t.raw();
        const names = async (rev: number) =>
          (await rawNames(raw, GETDIR, t.p('d'), rev)).map((r) => r.path);
        expect(
          await raw.call({ tag: 1, verb: GETDIR, path: t.p('d'), offset: 0, rev: ra - 1 }),
        ).toEqual({ tag: 1, err: 'NOENT' });
        expect(await names(ra)).toEqual(['a']);
        expect(await names(rb)).toEqual(['a', 'b']);
        expect(await names(await t.client.rev())).toEqual(['b']);
      },
    },
    {
      doc: 'GETDIR path, rev, offset: with a future rev, the request blocks until the store reaches it (as GET).',
      async run(t) {
        // Each write adds a name that sorts first, so the answer tells the rev it was read at.
        const got = await futureRead(
          t,
          (rev) => ({ verb: GETDIR, path: t.p('d'), offset: 0, rev }),
          (writer, n) => writer.set(t.p('d', `e${99 - n}`), 0, ''),
        );
        expect(got.path).toMatch(/^e\d\d$/);
      },
    },
    {
      doc: 'GETDIR offset past the end or negative: RANGE.',
      async run(t) {
        await t.client.set(t.p('d', 'only'), 0, '');
        const raw = await t.raw();
        for (const offset of [1, 100, -1]) {
          expect(await raw.call({ tag: 1, verb: GETDIR, path: t.p('d'), offset })).toEqual({
            tag: 1,
            err: 'RANGE',
          });
        }
      },
    },
    {
      doc: 'GETDIR on a file: NOTDIR.',
      async run(t) {
        await t.client.set(t.p('f'), 0, '');
        await fails(t.client.getdir(t.p('f'), await t.client.rev()), 'NOTDIR');
      },
    },
    {
      doc: 'GETDIR of a missing or bad path: NOENT.',
      async run(t) {
        const raw = await t.raw();
        for (const path of [t.p('missing'), `${t.p()}/`, 'bad']) {
          expect(await raw.call({ tag: 1, verb: GETDIR, path, offset: 0 }), path).toEqual({
            tag: 1,
            err: 'NOENT',
          });
        }
      },
    },
    {
      doc: 'GETDIR: MISSING_ARG without offset.',
      async run(t) {
        const raw = await t.raw();
        expect(await raw.call({ tag: 1, verb: GETDIR, path: '/' })).toEqual({
          tag: 1,
          err: 'MISSING_ARG',
        });
      },
    },
  ],

  WALK: [
    {
      doc: 'The offset-th FILE matching glob, in sorted path order; directories never match. Answers path, value, rev, flags=4.',
      async run(t) {
        const revs: Record<string, number> = {};
        for (const n of ['w/b', 'w/a/x', 'w/a-b', 'w/a/y/z'])
          revs[n] = await t.client.set(t.p(n), 0, n);
        const raw = await t.raw();
        const all = await rawNames(raw, WALK, t.p('w', '**'));
        expect(all).toEqual(
          ['w/a/x', 'w/a/y/z', 'w/a-b', 'w/b'].map((n) => ({
            tag: expect.any(Number) as number,
            path: t.p(n),
            value: n,
            rev: revs[n],
            flags: 4,
          })),
        );
        expect(await walkPaths(t, t.p('w', '*'))).toEqual([t.p('w/a-b'), t.p('w/b')]);
        expect(await walkPaths(t, t.p('w', 'a'))).toEqual([]);
      },
    },
    {
      doc: 'WALK glob, rev, offset: with a past rev, the files as of that store rev (as GET).',
      async run(t) {
        const ra = await t.client.set(t.p('w', 'a'), 0, 'a1');
        const rb = await t.client.set(t.p('w', 'b'), 0, 'b1');
        const ra2 = await t.client.set(t.p('w', 'a'), ra, 'a2');
        await t.client.del(t.p('w', 'b'), rb);
        const raw = await t.raw();
        const walk = async (rev: number) =>
          (await rawNames(raw, WALK, t.p('w', '*'), rev)).map(
            (r) => `${r.path!.slice(t.p().length)} ${r.value} ${r.rev}`,
          );
        expect(await walk(ra - 1)).toEqual([]);
        expect(await walk(rb)).toEqual([`/w/a a1 ${ra}`, `/w/b b1 ${rb}`]);
        expect(await walk(ra2)).toEqual([`/w/a a2 ${ra2}`, `/w/b b1 ${rb}`]);
        expect(await walk(await t.client.rev())).toEqual([`/w/a a2 ${ra2}`]);
      },
    },
    {
      doc: 'WALK glob, rev, offset: with a future rev, the request blocks until the store reaches it (as GET).',
      async run(t) {
        // Each write adds a file that sorts first, so the answer tells the rev it was read at.
        const got = await futureRead(
          t,
          (rev) => ({ verb: WALK, path: t.p('**'), offset: 0, rev }),
          (writer, n) => writer.set(t.p(`e${99 - n}`), 0, `v${n}`),
        );
        expect(got.path).toMatch(/\/e\d\d$/);
        expect(got.flags).toBe(4);
      },
    },
    {
      doc: 'WALK: no match, offset past the end, or negative: RANGE.',
      async run(t) {
        await t.client.set(t.p('f'), 0, '');
        const raw = await t.raw();
        const walk = (path: string, offset: number) =>
          raw.call({ tag: 1, verb: WALK, path, offset });
        expect(await walk(t.p('nothing*'), 0)).toEqual({ tag: 1, err: 'RANGE' });
        expect(await walk(t.p('*'), 1)).toEqual({ tag: 1, err: 'RANGE' });
        expect(await walk(t.p('*'), -1)).toEqual({ tag: 1, err: 'RANGE' });
      },
    },
    {
      doc: 'WALK: bad glob: OTHER.',
      async run(t) {
        const raw = await t.raw();
        const res = await raw.call({ tag: 1, verb: WALK, path: `${t.p()}/a b`, offset: 0 });
        expect(res).toMatchObject({ tag: 1, err: 'OTHER' });
        expect(res.detail).toMatch(/^invalid glob pattern/);
      },
    },
  ],

  ACCESS: [
    ...(
      [
        ['none', { read: true, write: true }],
        ['rw', { read: true, write: false }],
        ['rw+ro', { read: false, write: false }],
      ] as const
    ).map(([mode, expected]): Row => ({
      doc: `Every connection starts as if it had sent an empty secret (secrets: ${mode}).`,
      needs: { secrets: mode },
      async run(t) {
        await t.client.set(t.p('f'), 0, 'v');
        const access = async (raw: RawDoozerConnection) => ({
          read: (await raw.call({ tag: 1, verb: GET, path: t.p('f') })).err === undefined,
          write:
            (await raw.call({ tag: 2, verb: SET, path: t.p('f'), rev: -1, value: 'w' })).err ===
            undefined,
        });
        const fresh = await t.raw(null);
        const empty = await t.raw(null);
        const answer = await empty.call({ tag: 3, verb: Verb.ACCESS, value: '' });
        expect([{ tag: 3 }, { tag: 3, ...DENIED }]).toContainEqual(answer);
        expect(await access(fresh)).toEqual(expected);
        expect(await access(empty)).toEqual(expected);
      },
    })),
    {
      doc: 'No secrets configured: all allowed; a wrong secret still answers OTHER "permission denied" (access already held is kept).',
      needs: { secrets: 'none' },
      async run(t) {
        const c = await t.connect(null);
        await denied(c.access('wrong'));
        expect(await c.set(t.p('f'), 0, 'still allowed')).toBeGreaterThan(0);
        expect((await c.get(t.p('f'))).text).toBe('still allowed');
        await c.access('');
      },
    },
    {
      doc: 'Only a read-write secret: reads work without ACCESS, writes answer OTHER "permission denied" until ACCESS with the read-write secret.',
      needs: { secrets: 'rw' },
      async run(t) {
        await t.client.set(t.p('f'), 0, 'v');
        const c = await t.connect(null);
        expect((await c.get(t.p('f'))).text).toBe('v');
        await denied(c.set(t.p('f'), -1, 'no'));
        await denied(c.del(t.p('f'), -1));
        await denied(c.nop());
        await denied(c.access('wrong'));
        await c.access(t.server.secrets.rw!);
        expect(await c.set(t.p('f'), -1, 'yes')).toBeGreaterThan(0);
      },
    },
    {
      doc: 'Only a read-write secret: a wrong secret answers OTHER "permission denied" and access already held is kept.',
      needs: { secrets: 'rw' },
      async run(t) {
        const c = await t.connect(null);
        await c.access(t.server.secrets.rw!);
        await denied(c.access('wrong'));
        expect(await c.set(t.p('f'), 0, 'still writes')).toBeGreaterThan(0);
        expect((await c.get(t.p('f'))).text).toBe('still writes');
      },
    },
    {
      doc: 'Both secrets: a wrong secret answers OTHER "permission denied" and access already held is kept.',
      needs: { secrets: 'rw+ro' },
      async run(t) {
        await t.client.set(t.p('f'), 0, 'v');
        const c = await t.connect(null);
        await c.access(t.server.secrets.ro!);
        await denied(c.access('wrong'));
        expect((await c.get(t.p('f'))).text).toBe('v');
        await denied(c.set(t.p('f'), -1, ''));
        await c.access(t.server.secrets.rw!);
        await denied(c.access('wrong'));
        expect(await c.set(t.p('f'), -1, 'w')).toBeGreaterThan(0);
      },
    },
    {
      doc: 'Both secrets: without ACCESS, reads and writes are refused (REV and SELF still answer); the read-only secret allows reads only.',
      needs: { secrets: 'rw+ro' },
      async run(t) {
        await t.client.set(t.p('f'), 0, 'v');
        const c = await t.connect(null);
        expect(await c.rev()).toBeGreaterThan(0);
        expect(await c.self()).toBe(await t.client.self());
        await denied(c.get(t.p('f')));
        await denied(c.set(t.p('f'), -1, ''));
        await c.access(t.server.secrets.ro!);
        expect((await c.get(t.p('f'))).text).toBe('v');
        await denied(c.set(t.p('f'), -1, ''));
        await c.access(t.server.secrets.rw!);
        expect(await c.set(t.p('f'), -1, 'w')).toBeGreaterThan(0);
      },
    },
    {
      doc: 'A refusal is always err_code OTHER with err_detail "permission denied".',
      needs: { secrets: 'rw+ro' },
      async run(t) {
        const raw = await t.raw(null);
        const from = await t.client.rev();
        for (const req of [
          { verb: GET, path: t.p('f') },
          { verb: GET },
          { verb: SET, path: t.p('f'), rev: -1, value: '' },
          { verb: DEL, path: t.p('f'), rev: -1 },
          { verb: NOP },
          { verb: WAIT, path: '/**', rev: from },
          { verb: STAT, path: t.p('f') },
          { verb: GETDIR, path: '/', offset: 0 },
          { verb: WALK, path: '/**', offset: 0 },
          { verb: Verb.ACCESS, value: 'wrong' },
        ]) {
          expect(await raw.call({ tag: 1, ...req }), Verb[req.verb]).toEqual({ tag: 1, ...DENIED });
        }
      },
    },
    {
      doc: 'URIs: `sk` is the secret, sent with ACCESS right after connecting.',
      needs: { secrets: 'rw' },
      async run(t) {
        const { DoozerClient } = await import('../../lib/doozer/index.js');
        const uri = `${t.server.uri}&sk=${encodeURIComponent(t.server.secrets.rw!)}`;
        const c = await DoozerClient.connect(uri, { reconnect: false });
        try {
          expect(await c.set(t.p('f'), 0, 'via sk')).toBeGreaterThan(0);
        } finally {
          await c.close();
        }
      },
    },
  ],

  'Any verb': [
    {
      doc: 'A missing required field gives MISSING_ARG.',
      async run(t) {
        const raw = await t.raw();
        const p = t.p('f');
        for (const req of [
          { verb: GET },
          { verb: SET, rev: 0, value: '' },
          { verb: SET, path: p, value: '' },
          { verb: DEL, rev: 0 },
          { verb: DEL, path: p },
          { verb: WAIT, rev: 1 },
          { verb: WAIT, path: p },
          { verb: GETDIR, offset: 0 },
          { verb: GETDIR, path: '/' },
          { verb: WALK, offset: 0 },
          { verb: WALK, path: '/**' },
        ]) {
          expect(await raw.call({ tag: 1, ...req }), JSON.stringify(req)).toEqual({
            tag: 1,
            err: 'MISSING_ARG',
          });
        }
      },
    },
    {
      doc: 'An unknown or absent verb gives UNKNOWN_VERB.',
      async run(t) {
        const raw = await t.raw();
        for (const verb of [undefined, 4, 8, 42, 100]) {
          expect(await raw.call({ tag: 1, verb: verb }), String(verb)).toEqual({
            tag: 1,
            err: 'UNKNOWN_VERB',
          });
        }
      },
    },
  ],

  Globs: [
    ...(
      [
        ['`?` one character within a component', 'g/a?', ['g/a.', 'g/ab']],
        ['`*` any run within one component', 'g/a*', ['g/a', 'g/a.', 'g/ab', 'g/abc']],
        ['`*` never crosses a component', 'g/*/c', ['g/x/c']],
        [
          '`**` any run across components',
          'g/**',
          ['g/a', 'g/a.', 'g/ab', 'g/abc', 'g/b', 'g/x/c', 'g/x/y/c'],
        ],
        ['`**` in the middle', 'g/**/c', ['g/x/c', 'g/x/y/c']],
        ['Anything else matches itself', 'g/a.', ['g/a.']],
      ] as const
    ).map(([what, glob, matches]): Row => ({
      doc: `${what}.`,
      async run(t) {
        const files = ['g/a', 'g/ab', 'g/abc', 'g/a.', 'g/x/c', 'g/x/y/c', 'g/b'];
        const revs: number[] = [];
        for (const f of files) revs.push(await t.client.set(t.p(f), 0, f));
        expect(await walkPaths(t, t.p(glob))).toEqual(matches.map((m) => t.p(m)));
        // WAIT uses the same globs: from the first write, the first matching file written.
        const ev = await t.client.wait(t.p(glob), revs[0]!, LONG);
        const first = files.find((f) => (matches as readonly string[]).includes(f))!;
        expect(ev.path).toBe(t.p(first));
      },
    })),
  ],

  Clusters: [
    {
      doc: "Members of cluster NAME are listed under `/ctl/ns/NAME/<node id>`, each file holding the node's `host:port`.",
      async run(t) {
        const name = (await t.client.get('/ctl/name')).text;
        expect(name).toMatch(/^[a-zA-Z0-9.-]+$/);
        const self = await t.client.self();
        const members = await t.client.getdir(`/ctl/ns/${name}`, await t.client.rev());
        expect(members).toContain(self);
        expect((await t.client.get(`/ctl/ns/${name}/${self}`)).text).toMatch(
          /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d+$/,
        );
      },
    },
    {
      doc: 'A URI that names a cluster (`cn=`) instead of addresses is resolved by reading that directory from a boot cluster (the boot URI).',
      async run(t) {
        const { DoozerClient } = await import('../../lib/doozer/index.js');
        const name = (await t.client.get('/ctl/name')).text;
        const sk = t.server.secrets.rw ? `&sk=${encodeURIComponent(t.server.secrets.rw)}` : '';
        const boot = `${t.server.uri}${sk}`;
        const c = await DoozerClient.connect(`doozer:?cn=${name}${sk}`, {
          bootUri: boot,
          reconnect: false,
        });
        try {
          const members = await t.client.getdir(`/ctl/ns/${name}`, await t.client.rev());
          expect(members).toContain(await c.self());
        } finally {
          await c.close();
        }
      },
    },
    {
      doc: 'Writes sent to a node that is not a consensus member answer READONLY; a dead node is dropped from the membership after its timeout.',
      needs: { cluster: true },
      run() {
        return Promise.resolve();
      },
    },
  ],
};

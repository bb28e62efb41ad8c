/**
 * One connection cannot starve the others: its pipeline is processed in
 * slices of the event loop, so a storm of costly reads (GETDIR pinned to
 * rotating past revs of a large directory) leaves a healthy client's
 * keepalive answered; and a WALK over a large tree is walked in steps, as of
 * its rev, whatever is written in between.
 */
import { describe, expect, it } from 'vitest';
import { DoozerClient } from '../../lib/doozer/index.js';
import { compileGlob } from '../../lib/server/glob.js';
import { Store } from '../../lib/server/store.js';
import { Walk, WalkCache, WalkJob } from '../../lib/server/walk.js';
import { encodeRequest, type RawDoozerConnection } from '../../lib/testing/index.js';
import { Verb } from '../../lib/wire/index.js';
import { listening, run } from './dev-server-process.js';
import { connectRaw, within } from './helpers.js';

const { SET, GETDIR, REV } = Verb;

/** Sends `n` requests made by `make(i)` in batches, and waits until all are answered. */
async function pipeline(
  c: RawDoozerConnection,
  n: number,
  make: (i: number) => Parameters<typeof encodeRequest>[0],
): Promise<void> {
  for (let i = 0; i < n; i += 5000) {
    const batch = Array.from({ length: Math.min(5000, n - i) }, (_, k) =>
      encodeRequest({ tag: 1, ...make(i + k) }),
    );
    c.writeRaw(Buffer.concat(batch));
  }
  await c.call({ tag: 2, verb: REV });
}

describe('fairness', () => {
  it('a storm of GETDIRs at rotating past revs does not make a healthy keepalive give up', async () => {
    // The server runs in a process of its own: in this one, a stalled event
    // loop would stall the healthy client's keepalive timer along with it.
    const where = await listening(run(['--listen', '127.0.0.1:0', '--heartbeat-ms', '0']));
    const setup = await connectRaw(where);
    // A directory whose last 2000 changes fill the history.
    await pipeline(setup, 5000, (i) => ({ verb: SET, path: `/big/f${i}`, rev: -1, value: '' }));
    await pipeline(setup, 2000, (i) => ({ verb: SET, path: `/big/n${i}`, rev: -1, value: '' }));
    const top = (await setup.call({ verb: REV })).rev!;

    const healthy = await DoozerClient.connect(where.uri, {
      keepalive: { intervalMs: 20, timeoutMs: 500 },
      reconnect: false,
    });
    const disconnects: string[] = [];
    healthy.on('disconnected', (e) => disconnects.push(e.reason.message));
    try {
      // GETDIRs, each at another past rev: each undoes up to 2000 changes,
      // seconds of work in all, most of it in one socket read.
      const attacker = await connectRaw(where);
      const storm = 2500;
      const last = attacker.answerTo(storm);
      attacker.writeRaw(
        Buffer.concat(
          Array.from({ length: storm }, (_, i) =>
            encodeRequest({
              tag: i + 1,
              verb: GETDIR,
              path: '/big',
              offset: i,
              rev: top - 1 - ((i * 37) % 1900),
            }),
          ),
        ),
      );
      // Meanwhile the healthy client keeps being answered, probes included.
      let stormDone = false;
      void last.then(() => (stormDone = true));
      let reads = 0;
      while (!stormDone) {
        expect((await healthy.get('/big/f1')).rev).toBeGreaterThan(0);
        reads++;
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(await within(last, 120_000, 'the storm to be answered')).toMatchObject({
        tag: storm,
        path: expect.stringMatching(/^[fn]\d+$/) as unknown,
      });
      expect(reads).toBeGreaterThan(0);
      expect(disconnects).toEqual([]);
      expect(healthy.state).toBe('connected');
    } finally {
      await healthy.close();
    }
  });
});

describe('a walk in steps', () => {
  it('walks as of its rev across steps, whatever is written between them', () => {
    const store = new Store(100_000);
    for (let i = 0; i < 3000; i++) store.set(`/t/d${i % 30}/f${i}`, -1, 'v');
    const rev = store.rev;
    const glob = compileGlob('/t/**');
    const whole = new Walk(store.at(rev), glob).step(Infinity)!;
    expect(whole).toHaveLength(3000);
    const walk = new Walk(store.at(rev), glob);
    let steps = 0;
    let found: readonly string[] | undefined;
    for (let i = 0; found === undefined; i++) {
      found = walk.step(performance.now() - 1); // the deadline has always passed
      steps++;
      // Between steps: new files, deleted files, new directories.
      store.set(`/t/d${i % 40}/g${i}`, -1, 'v');
      store.del(`/t/d${i % 30}/f${i * 7}`, -1);
      store.set(`/t/a${i}`, -1, 'v');
    }
    expect(steps).toBeGreaterThan(10); // 256 nodes a step
    expect(found).toEqual(whole);
  });

  it('answers a pinned walk TOO_LATE, and restarts an unpinned one, when its rev leaves the history', () => {
    const store = new Store(50);
    for (let i = 0; i < 2000; i++) store.set(`/t/f${i}`, -1, 'v');
    const glob = compileGlob('/t/*');
    const outcome = (pinned: boolean): { at: number | undefined; found: number } => {
      const result: { at: number | undefined; found: number } = { at: -1, found: -1 };
      const job = new WalkJob(store, new WalkCache(), glob, store.rev, pinned, (snap, m) => {
        result.at = snap?.rev;
        result.found = m.length;
      });
      expect(job.step(performance.now() - 1)).toBe(false);
      for (let i = 0; i < 60; i++) store.set(`/t/f${i}`, -1, 'w'); // 60 revs later
      while (!job.step(Infinity));
      return result;
    };
    expect(outcome(true)).toEqual({ at: undefined, found: 0 });
    expect(outcome(false)).toEqual({ at: store.rev, found: 2000 });
  });
});

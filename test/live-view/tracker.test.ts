/**
 * The live view's election timeline, fed the sequences of file changes each
 * way of ending a term produces (docs/election-protocol.md), with explicit
 * viewer times: which reason it reads from them, the gaps, the lease's age
 * and renewal period, and its bounds.
 */
import { describe, expect, it } from 'vitest';
import { ElectionTracker, type TimelineEntry } from '../../lib/live-view/elections.js';

const NAME = 'jobs';
const LIMITS = { maxElections: 10, maxTimeline: 100, maxValueChars: 64 };

const lease = (state: 'held' | 'released', term: number, holder: string, seq = 0): string =>
  JSON.stringify({ v: 1, state, term, holder, id: `id-${holder}`, seq, nonce: `${state}${seq}` });

/** Feeds changes at increasing revs and times, as the WAIT stream would. */
class Feed {
  readonly tracker = new ElectionTracker(LIMITS);
  rev = 100;
  at = 1000;

  /** Creates the election file: a new term; returns its token. */
  elect(master: string): number {
    const token = this.#next();
    this.tracker.observe('election', NAME, { rev: token, text: master }, this.at, true);
    return token;
  }
  deleteElection(): void {
    this.#next();
    this.tracker.observe('election', NAME, null, this.at, true);
  }
  lease(body: string): void {
    this.tracker.observe('lease', NAME, { rev: this.#next(), text: body }, this.at, true);
  }
  timeline(): TimelineEntry[] {
    return this.tracker.view(NAME, this.at)!.timeline;
  }
  /** The timeline as `kind[:token:reason]` strings. */
  shape(): string[] {
    return this.timeline().map((t) =>
      t.kind === 'gap' ? 'gap' : `term:${t.token}:${t.reason ?? 'open'}`,
    );
  }
  #next(): number {
    this.at += 10;
    return ++this.rev;
  }
}

describe('election timeline', () => {
  it('resign: the lease is released, then the election file deleted: released', () => {
    const f = new Feed();
    const t = f.elect('a:1');
    f.lease(lease('held', t, 'a:1'));
    f.lease(lease('released', t, 'a:1'));
    f.deleteElection();
    const u = f.elect('b:2');
    expect(f.shape()).toEqual([`term:${t}:released`, 'gap', `term:${u}:open`]);
    const [term, gap, next] = f.timeline();
    expect([term!.end, gap!.start]).toEqual([gap!.start, gap!.start]);
    expect(gap!.end).toBe(next!.start);
    expect(next).toMatchObject({ master: 'b:2', startSeen: true });
  });

  it('a forced election by another process: deleted while held, then released: forced', () => {
    const f = new Feed();
    const t = f.elect('a:1');
    f.lease(lease('held', t, 'a:1'));
    f.deleteElection();
    expect(f.shape()).toEqual([`term:${t}:pending`, 'gap']);
    f.lease(lease('released', t, 'a:1'));
    f.elect('a:1');
    expect(f.shape().slice(0, 2)).toEqual([`term:${t}:forced`, 'gap']);
  });

  it('a dead master: deleted while held, the next term with no release: deposed, silent since its last renewal', () => {
    const f = new Feed();
    const t = f.elect('a:1');
    f.lease(lease('held', t, 'a:1'));
    f.lease(lease('held', t, 'a:1', 1));
    const lastRenewal = f.at;
    f.at += 1000; // the master is dead: nothing changes for a while
    f.deleteElection();
    const u = f.elect('b:2');
    f.lease(lease('held', u, 'b:2'));
    expect(f.shape()).toEqual([`term:${t}:deposed`, 'gap', `term:${u}:open`]);
    const [dead] = f.timeline();
    expect(dead!.renewedAt).toBe(lastRenewal);
    expect(dead!.end! - dead!.renewedAt!).toBe(1010);
  });

  it('a Go client: no lease, the file deleted: deleted; overwritten: replaced', () => {
    const f = new Feed();
    const t = f.elect('go:1');
    const u = f.elect('go:2'); // a SET over the file
    f.deleteElection();
    expect(f.shape()).toEqual([`term:${t}:replaced`, `term:${u}:deleted`, 'gap']);
  });

  it('a lease of another term does not make a deletion pending', () => {
    const f = new Feed();
    const t = f.elect('a:1');
    f.lease(lease('held', t - 50, 'old:1'));
    f.deleteElection();
    expect(f.shape()).toEqual([`term:${t}:deleted`, 'gap']);
  });

  it('the first read shows what is there as begun before the viewer; a later read, changes as unobserved', () => {
    const tracker = new ElectionTracker(LIMITS);
    tracker.observe('election', NAME, { rev: 7, text: 'a:1' }, 50, false);
    tracker.observe('lease', NAME, { rev: 8, text: lease('held', 7, 'a:1') }, 50, false);
    tracker.observe('lease', 'idle', { rev: 9, text: lease('released', 3, 'x:1') }, 50, false);
    expect(tracker.view(NAME, 50)!.timeline).toEqual([
      { id: 1, kind: 'term', token: 7, master: 'a:1', start: 50, startSeen: false, renewedAt: 50 },
    ]);
    expect(tracker.view('idle', 50)!.timeline).toMatchObject([
      { kind: 'gap', start: 50, startSeen: false },
    ]);
    // Out of touch, then read again: another term is there.
    tracker.observe('election', NAME, { rev: 20, text: 'b:2' }, 900, false);
    expect(tracker.view(NAME, 900)!.timeline).toMatchObject([
      { kind: 'term', token: 7, end: 900, reason: 'unobserved' },
      { kind: 'term', token: 20, start: 900, startSeen: false },
    ]);
  });

  it("the lease's age is the time since the viewer saw it change; the period is between two renewals of one term", () => {
    const f = new Feed();
    const t = f.elect('a:1');
    f.lease(lease('held', t, 'a:1'));
    let v = f.tracker.view(NAME, f.at + 5)!;
    expect([v.leaseAgeMs, v.leaseIntervalMs]).toEqual([5, null]);
    f.at += 190;
    f.lease(lease('held', t, 'a:1', 1));
    v = f.tracker.view(NAME, f.at + 30)!;
    expect([v.leaseAgeMs, v.leaseIntervalMs]).toEqual([30, 200]);
    expect(v.lease).toEqual({
      rev: f.rev,
      valid: true,
      state: 'held',
      term: t,
      holder: 'a:1',
      seq: 1,
    });
    // The same rev and body again (a fresh read that finds no change) does not reset the age.
    expect(
      f.tracker.observe(
        'lease',
        NAME,
        { rev: f.rev, text: lease('held', t, 'a:1', 1) },
        f.at + 99,
        false,
      ),
    ).toBe(false);
    expect(f.tracker.view(NAME, f.at + 100)!.leaseAgeMs).toBe(100);
    f.lease('not json');
    expect(f.tracker.view(NAME, f.at)!.lease).toEqual({ rev: f.rev, valid: false });
  });

  it('a delta holds only the entries changed since the last one', () => {
    const f = new Feed();
    const t = f.elect('a:1');
    expect(f.tracker.delta(NAME, f.at)!.timeline.map((e) => e.token)).toEqual([t]);
    expect(f.tracker.delta(NAME, f.at)!.timeline).toEqual([]);
    f.lease(lease('released', t, 'a:1'));
    f.deleteElection();
    const d = f.tracker.delta(NAME, f.at)!;
    expect(d.timeline.map((e) => `${e.kind}:${e.reason ?? ''}`)).toEqual(['term:released', 'gap:']);
  });

  it('keeps at most maxTimeline entries and maxElections elections, and cuts long addresses', () => {
    const tracker = new ElectionTracker({ maxElections: 2, maxTimeline: 3, maxValueChars: 8 });
    for (let i = 1; i <= 5; i++) {
      tracker.observe('election', NAME, { rev: 10 * i, text: `host-${i}:1` }, i, true);
      tracker.observe('election', NAME, null, i + 0.5, true);
    }
    const v = tracker.view(NAME, 10)!;
    expect(v.timeline.map((t) => t.kind)).toEqual(['gap', 'term', 'gap']);
    expect(v.firstId).toBe(v.timeline[0]!.id);
    expect(v.timeline[1]!.master).toBe('host-5:1');
    tracker.observe('election', NAME, { rev: 99, text: 'a-very-long-address:1' }, 11, true);
    expect(tracker.view(NAME, 11)!.master).toEqual({ address: 'a-very-l…', token: 99 });
    tracker.observe('election', 'second', { rev: 1, text: 'x:1' }, 1, true);
    expect(tracker.truncated).toBe(false);
    tracker.observe('election', 'third', { rev: 2, text: 'x:1' }, 1, true);
    expect([tracker.truncated, tracker.names()]).toEqual([true, [NAME, 'second']]);
  });
});

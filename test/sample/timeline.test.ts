/** The demo's timeline: terms and gaps from the sightings, and the page rendered from them. */
import { describe, expect, it } from 'vitest';
import { escapeHtml, renderTimeline, spans, StoryRecorder } from '../../sample/timeline/index.js';
import { tickStep } from '../../sample/timeline/render.js';
import { A, B, C, sampleStory, TIMINGS } from './timeline-story.js';

describe('spans', () => {
  it('turns sightings into terms and gaps; the last term is open at the end', () => {
    const { terms, gaps } = spans(sampleStory());
    expect(terms).toEqual([
      { term: 5, master: A, label: 'A', start: 2200, end: 3000, open: false },
      { term: 9, master: B, label: 'B', start: 3900, end: 5000, open: false },
      { term: 12, master: C, label: 'C', start: 5030, end: 6000, open: true },
    ]);
    expect(gaps).toEqual([
      { start: 1000, end: 2200 },
      { start: 3000, end: 3900 },
      { start: 5000, end: 5030 },
    ]);
  });

  it('a master replaced without a gap seen ends where the next begins; repeats are one term', () => {
    const story = {
      ...sampleStory(),
      sightings: [
        { master: A, term: 5, at: 1500 },
        { master: A, term: 5, at: 1600 },
        { master: B, term: 9, at: 2000 },
        { master: 'x:1', term: 11, at: 9000 }, // after the end: clipped
      ],
    };
    const { terms, gaps } = spans(story);
    expect(terms.map((t) => [t.term, t.label, t.start, t.end])).toEqual([
      [5, 'A', 1500, 2000],
      [9, 'B', 2000, 6000],
      [11, 'x:1', 6000, 6000],
    ]);
    expect(gaps).toEqual([]);
  });
});

describe('renderTimeline', () => {
  it('draws every term, gap and measured step, with the measured times', () => {
    const html = renderTimeline(sampleStory());
    for (const term of [5, 9, 12]) {
      expect(html).toContain(`<g class="term" data-term="${term}"`);
      expect(html).toContain(`<tr data-term="${term}">`);
    }
    expect(html.match(/<g class="gap"/g)).toHaveLength(3);
    expect(html).toContain('<g class="mark" data-kind="first-election" data-ms="1100">');
    expect(html).toContain('<g class="mark" data-kind="failover" data-ms="950">');
    expect(html).toContain('<g class="mark" data-kind="handover" data-ms="40">');
    expect(html).toContain('failover 950 ms');
    expect(html).toContain('(kill -9 A)');
    expect(html).toContain('Lease 1000 ms, renew deadline 700 ms, retry period 200 ms.');
  });

  it('is self-contained: no script, no external reference, a strict CSP', () => {
    const html = renderTimeline(sampleStory());
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\b(?:src|href)=/i);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
  });

  it('shows markup in addresses and labels as text', () => {
    const evil = '<img src=x onerror=alert(1)>';
    const story = {
      ...sampleStory(),
      title: `t & "${evil}"`,
      sightings: [{ master: evil, term: 3, at: 1500 }],
      marks: [{ kind: 'handover' as const, from: 1400, to: 1500, cause: evil }],
    };
    const html = renderTimeline(story);
    expect(html).not.toContain('<img');
    expect(html).toContain(escapeHtml(evil));
    expect(html).toContain('t &amp; &quot;&lt;img');
  });

  it('axis ticks: about eight, at 1-2-5 steps', () => {
    expect(tickStep(5000)).toBe(1000);
    expect(tickStep(12_000)).toBe(2000);
    expect(tickStep(700)).toBe(100);
    expect(tickStep(30_000)).toBe(5000);
  });
});

describe('StoryRecorder', () => {
  it('keeps what it was told, in order, up to the given end', () => {
    const rec = new StoryRecorder('demo', TIMINGS);
    rec.replica({ label: 'A', address: A });
    rec.sighting({ master: A, term: 4, at: performance.now() });
    rec.mark('handover', 1, 2, 'SIGTERM A');
    const story = rec.story();
    expect(story.replicas).toEqual([{ label: 'A', address: A }]);
    expect(story.sightings.map((s) => s.term)).toEqual([4]);
    expect(story.marks).toEqual([{ kind: 'handover', from: 1, to: 2, cause: 'SIGTERM A' }]);
    expect(story.end).toBeGreaterThanOrEqual(story.t0);
    expect(Number.isNaN(Date.parse(story.startedAt))).toBe(false);
  });
});

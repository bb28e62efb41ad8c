/**
 * The demo's story as one self-contained HTML page: an inline SVG timeline
 * (a lane per replica with its master terms, a lane of the times with no
 * master, the measured first election, failover and handover above), and the
 * same facts as tables. No script, no external asset; every text is escaped.
 */
import { spans, type DemoStory, type GapSpan, type Mark, type TermSpan } from './story.js';

const WIDTH = 960;
const LEFT = 96;
const RIGHT = 24;
const MARK_ROW = 34;
const LANE = 34;
const BAR = 22;
const AXIS = 34;
const COLOURS = ['#2f6fdf', '#1f9d55', '#d9822b', '#9b59b6', '#c0392b'];

const KIND_LABEL: Record<Mark['kind'], string> = {
  'first-election': 'first election',
  failover: 'failover',
  handover: 'handover',
};

/** Escapes text for HTML (element content and quoted attribute values alike). */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

/** Milliseconds as a whole number with the unit. */
export const formatMs = (ms: number): string => `${Math.round(ms)} ms`;

/** A time of the story as seconds since its start, e.g. `2.315 s`. */
const formatAt = (story: DemoStory, t: number): string => `${((t - story.t0) / 1000).toFixed(3)} s`;

/** A step between axis ticks that gives about 8 of them over `spanMs`. */
export function tickStep(spanMs: number): number {
  const raw = Math.max(spanMs, 1) / 8;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].find((m) => m * magnitude >= raw)!;
  return step * magnitude;
}

interface Layout {
  readonly x: (t: number) => number;
  readonly lanes: readonly string[];
  readonly laneY: (label: string) => number;
  readonly marksTop: number;
  readonly lanesTop: number;
  readonly height: number;
}

function layout(story: DemoStory, terms: readonly TermSpan[]): Layout {
  const span = Math.max(story.end - story.t0, 1);
  const x = (t: number): number =>
    LEFT +
    ((Math.min(Math.max(t, story.t0), story.end) - story.t0) / span) * (WIDTH - LEFT - RIGHT);
  // One lane per replica, then any master that is not one of the demo's, then "no master".
  const lanes = [...story.replicas.map((r) => r.label)];
  for (const t of terms) if (!lanes.includes(t.label)) lanes.push(t.label);
  lanes.push('no master');
  const marksTop = 8;
  const lanesTop = marksTop + story.marks.length * MARK_ROW + 8;
  const laneY = (label: string): number => lanesTop + lanes.indexOf(label) * LANE;
  return { x, lanes, laneY, marksTop, lanesTop, height: lanesTop + lanes.length * LANE + AXIS };
}

const width = (a: number, b: number): number => Math.max(b - a, 2);

/** A bar's label: inside when it fits, else beside it (right, or left near the edge). */
function termLabel(x0: number, w: number, y: number, text: string): string {
  const textWidth = text.length * 7.5;
  const ty = y + BAR / 2 + 4;
  if (w >= textWidth + 12) {
    return `<text x="${(x0 + 6).toFixed(1)}" y="${ty}" class="on-bar">${text}</text>`;
  }
  const right = x0 + w + 4 + textWidth <= WIDTH;
  const tx = right ? x0 + w + 4 : x0 - 4;
  return `<text x="${tx.toFixed(1)}" y="${ty}" text-anchor="${right ? 'start' : 'end'}" class="off-bar">${text}</text>`;
}

function termBar(l: Layout, t: TermSpan, colour: string): string {
  const x0 = l.x(t.start);
  const w = width(x0, l.x(t.end));
  const y = l.laneY(t.label) + (LANE - BAR) / 2;
  const title = `term ${t.term}: ${t.master}, ${formatMs(t.end - t.start)}${t.open ? ' (still master at the end)' : ''}`;
  return [
    `<g class="term" data-term="${t.term}" data-master="${escapeHtml(t.label)}">`,
    `<title>${escapeHtml(title)}</title>`,
    `<rect x="${x0.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" rx="4" fill="${colour}"/>`,
    termLabel(x0, w, y, `term ${t.term}`),
    '</g>',
  ].join('');
}

function gapBar(l: Layout, story: DemoStory, g: GapSpan): string {
  const x0 = l.x(g.start);
  const w = width(x0, l.x(g.end));
  const y = l.laneY('no master') + (LANE - BAR) / 2;
  const text = `no master ${formatMs(g.end - g.start)} (from ${formatAt(story, g.start)})`;
  return [
    `<g class="gap" data-ms="${Math.round(g.end - g.start)}">`,
    `<title>${escapeHtml(text)}</title>`,
    `<rect x="${x0.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" rx="4"/>`,
    '</g>',
  ].join('');
}

function markBracket(l: Layout, m: Mark, row: number): string {
  const x0 = l.x(m.from);
  const x1 = Math.max(l.x(m.to), x0 + 2);
  const y = l.marksTop + row * MARK_ROW + 20;
  const label = `${KIND_LABEL[m.kind]} ${formatMs(m.to - m.from)}`;
  // The label sits right of the bracket's start, or left of its end near the right edge.
  const anchorEnd = x0 > WIDTH - 260;
  const tx = anchorEnd ? x1 : x0;
  return [
    `<g class="mark" data-kind="${m.kind}" data-ms="${Math.round(m.to - m.from)}">`,
    `<title>${escapeHtml(`${label}: ${m.cause} -> next master`)}</title>`,
    `<path d="M${x0.toFixed(1)} ${y + 6} V${y} H${x1.toFixed(1)} V${y + 6}" class="bracket"/>`,
    `<line x1="${x0.toFixed(1)}" y1="${y}" x2="${x0.toFixed(1)}" y2="${l.height - AXIS}" class="guide"/>`,
    `<line x1="${x1.toFixed(1)}" y1="${y}" x2="${x1.toFixed(1)}" y2="${l.height - AXIS}" class="guide"/>`,
    `<text x="${tx.toFixed(1)}" y="${y - 5}" text-anchor="${anchorEnd ? 'end' : 'start'}" class="mark-label">${escapeHtml(label)} <tspan class="cause">(${escapeHtml(m.cause)})</tspan></text>`,
    '</g>',
  ].join('');
}

function axis(l: Layout, story: DemoStory): string {
  const span = story.end - story.t0;
  const step = tickStep(span);
  const y = l.height - AXIS + 4;
  const ticks: string[] = [];
  for (let t = 0; t <= span; t += step) {
    const x = l.x(story.t0 + t).toFixed(1);
    const text = step < 1000 ? `${(t / 1000).toFixed(step < 100 ? 2 : 1)} s` : `${t / 1000} s`;
    ticks.push(
      `<line x1="${x}" y1="${y}" x2="${x}" y2="${y + 5}" class="tick"/><text x="${x}" y="${y + 18}" text-anchor="middle" class="tick-label">${text}</text>`,
    );
  }
  return `<g class="axis"><line x1="${LEFT}" y1="${y}" x2="${WIDTH - RIGHT}" y2="${y}" class="tick"/>${ticks.join('')}</g>`;
}

/** The timeline as an SVG element. */
export function renderSvg(story: DemoStory): string {
  const { terms, gaps } = spans(story);
  const l = layout(story, terms);
  const colour = (label: string): string => {
    const i = story.replicas.findIndex((r) => r.label === label);
    return i < 0 ? '#7f8c8d' : COLOURS[i % COLOURS.length]!;
  };
  const lanes = l.lanes.map((label, i) => {
    const y = l.laneY(label);
    return [
      i % 2 === 0 ? `<rect x="0" y="${y}" width="${WIDTH}" height="${LANE}" class="lane"/>` : '',
      `<text x="8" y="${y + LANE / 2 + 4}" class="lane-label">${escapeHtml(label)}</text>`,
    ].join('');
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${l.height}" width="${WIDTH}" height="${l.height}" role="img" aria-label="${escapeHtml(`Timeline of ${story.title}`)}">`,
    ...lanes,
    ...gaps.map((g) => gapBar(l, story, g)),
    ...terms.map((t) => termBar(l, t, colour(t.label))),
    ...story.marks.map((m, i) => markBracket(l, m, i)),
    axis(l, story),
    '</svg>',
  ].join('\n');
}

function termsTable(story: DemoStory, terms: readonly TermSpan[]): string {
  const rows = terms.map(
    (t) =>
      `<tr data-term="${t.term}"><td>${t.term}</td><td>${escapeHtml(t.label)}</td><td>${escapeHtml(t.master)}</td><td>${formatAt(story, t.start)}</td><td>${t.open ? 'still master' : formatAt(story, t.end)}</td><td>${formatMs(t.end - t.start)}</td></tr>`,
  );
  return `<table class="terms"><caption>Master terms (fencing token = term)</caption><thead><tr><th>term</th><th>replica</th><th>address</th><th>from</th><th>to</th><th>length</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function marksTable(story: DemoStory): string {
  const rows = story.marks.map(
    (m) =>
      `<tr data-kind="${m.kind}"><td>${KIND_LABEL[m.kind]}</td><td>${escapeHtml(m.cause)}</td><td>${formatAt(story, m.from)}</td><td>${formatMs(m.to - m.from)}</td></tr>`,
  );
  return `<table class="marks"><caption>Measured</caption><thead><tr><th>step</th><th>from</th><th>at</th><th>to the next master</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; }
p.meta { color: #555; margin: 0 0 16px; }
svg { display: block; max-width: 100%; height: auto; border: 1px solid #ddd; border-radius: 6px; background: #fff; }
.lane { fill: #f6f7f9; }
.lane-label { font-weight: 600; font-size: 13px; fill: #333; }
.on-bar { fill: #fff; font-size: 12px; font-weight: 600; }
.off-bar { fill: #333; font-size: 12px; font-weight: 600; }
.gap rect { fill: #e74c3c; opacity: 0.35; }
.bracket { fill: none; stroke: #333; stroke-width: 1.5; }
.guide { stroke: #999; stroke-dasharray: 3 3; }
.mark-label { font-size: 12px; font-weight: 600; fill: #222; }
.cause { font-weight: 400; fill: #666; }
.tick { stroke: #888; }
.tick-label { font-size: 11px; fill: #555; }
table { border-collapse: collapse; margin: 16px 0; }
caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
th, td { border: 1px solid #ddd; padding: 3px 10px; text-align: left; }
th { background: #f6f7f9; }
`;

/** The whole page. */
export function renderTimeline(story: DemoStory): string {
  const { terms } = spans(story);
  const { leaseMs, renewDeadlineMs, retryPeriodMs } = story.timings;
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    `<title>${escapeHtml(story.title)}</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<h1>${escapeHtml(story.title)}</h1>`,
    `<p class="meta">Started ${escapeHtml(story.startedAt)}; lasted ${formatMs(story.end - story.t0)}. Lease ${leaseMs} ms, renew deadline ${renewDeadlineMs} ms, retry period ${retryPeriodMs} ms.</p>`,
    renderSvg(story),
    marksTable(story),
    termsTable(story, terms),
    '</body></html>',
    '',
  ].join('\n');
}

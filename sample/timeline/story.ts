/**
 * The demo's story, as recorded while it runs: every change of master the
 * observer saw, and the moments the demo measured between (first election,
 * failover, handover). Pure data and pure functions: rendering is in render.ts.
 */

/** A master seen by the observer from `at` on (`''` and term 0: none). */
export interface Sighting {
  readonly master: string;
  readonly term: number;
  /** `performance.now()` of the demo process. */
  readonly at: number;
}

/** What the demo measured. */
export type MarkKind = 'first-election' | 'failover' | 'handover';

/** One measured interval: from what the demo did (`from`) to the next master seen (`to`). */
export interface Mark {
  readonly kind: MarkKind;
  readonly from: number;
  readonly to: number;
  /** What happened at `from`, e.g. `kill -9 A`. */
  readonly cause: string;
}

export interface StoryReplica {
  readonly label: string;
  readonly address: string;
}

export interface StoryTimings {
  readonly leaseMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

/** Everything the timeline shows. Times are `performance.now()` values of one process. */
export interface DemoStory {
  readonly title: string;
  /** Wall-clock time (ISO 8601) of `t0`. */
  readonly startedAt: string;
  readonly t0: number;
  readonly end: number;
  readonly timings: StoryTimings;
  readonly replicas: readonly StoryReplica[];
  readonly sightings: readonly Sighting[];
  readonly marks: readonly Mark[];
}

/** A master term on the timeline. */
export interface TermSpan {
  readonly term: number;
  readonly master: string;
  /** The replica's label, or the address when it is none of the demo's. */
  readonly label: string;
  readonly start: number;
  readonly end: number;
  /** Still going when the story ended. */
  readonly open: boolean;
}

/** A time with no master seen. */
export interface GapSpan {
  readonly start: number;
  readonly end: number;
}

/** The terms and gaps the sightings make, clipped to the story's span. */
export function spans(story: DemoStory): { terms: TermSpan[]; gaps: GapSpan[] } {
  const terms: TermSpan[] = [];
  const gaps: GapSpan[] = [];
  const label = (address: string): string =>
    story.replicas.find((r) => r.address === address)?.label ?? address;
  let term: { term: number; master: string; start: number } | undefined;
  let gapStart: number | undefined;
  const close = (at: number): void => {
    if (term) terms.push({ ...term, label: label(term.master), end: at, open: false });
    if (gapStart !== undefined) gaps.push({ start: gapStart, end: at });
    term = undefined;
    gapStart = undefined;
  };
  const sorted = [...story.sightings].sort((a, b) => a.at - b.at);
  for (const s of sorted) {
    const at = Math.min(Math.max(s.at, story.t0), story.end);
    if (s.master === '' || s.term === 0) {
      if (gapStart === undefined) {
        close(at);
        gapStart = at;
      }
    } else if (term?.term !== s.term) {
      close(at);
      term = { term: s.term, master: s.master, start: at };
    }
  }
  if (term) terms.push({ ...term, label: label(term.master), end: story.end, open: true });
  if (gapStart !== undefined) gaps.push({ start: gapStart, end: story.end });
  return { terms, gaps };
}

/** Records a story as the demo runs. */
export class StoryRecorder {
  private readonly sightings: Sighting[] = [];
  private readonly marks: Mark[] = [];
  private readonly replicas: StoryReplica[] = [];
  private readonly t0 = performance.now();
  private readonly startedAt = new Date().toISOString();

  constructor(
    private readonly title: string,
    private readonly timings: StoryTimings,
  ) {}

  sighting(s: Sighting): void {
    this.sightings.push(s);
  }

  replica(r: StoryReplica): void {
    this.replicas.push(r);
  }

  mark(kind: MarkKind, from: number, to: number, cause: string): void {
    this.marks.push({ kind, from, to, cause });
  }

  /** The story up to now. */
  story(end = performance.now()): DemoStory {
    return {
      title: this.title,
      startedAt: this.startedAt,
      t0: this.t0,
      end,
      timings: this.timings,
      replicas: [...this.replicas],
      sightings: [...this.sightings],
      marks: [...this.marks],
    };
  }
}

/** A small demo story for the timeline tests (pure data). */
import type { DemoStory } from '../../sample/timeline/index.js';

export const TIMINGS = { leaseMs: 1000, renewDeadlineMs: 700, retryPeriodMs: 200 };
export const A = '127.0.0.1:4001';
export const B = '127.0.0.1:4002';
export const C = '127.0.0.1:4003';

/** The demo's story in small: first election of A, A killed, B after a failover, B resigns, C. */
export function sampleStory(): DemoStory {
  return {
    title: 'demo',
    startedAt: '2026-01-01T00:00:00.000Z',
    t0: 1000,
    end: 6000,
    timings: TIMINGS,
    replicas: [
      { label: 'A', address: A },
      { label: 'B', address: B },
      { label: 'C', address: C },
    ],
    sightings: [
      { master: '', term: 0, at: 1000 },
      { master: A, term: 5, at: 2200 },
      { master: '', term: 0, at: 3000 },
      { master: B, term: 9, at: 3900 },
      { master: '', term: 0, at: 5000 },
      { master: C, term: 12, at: 5030 },
    ],
    marks: [
      { kind: 'first-election', from: 1100, to: 2200, cause: 'spawn of A, B, C' },
      { kind: 'failover', from: 2950, to: 3900, cause: 'kill -9 A' },
      { kind: 'handover', from: 4990, to: 5030, cause: 'SIGTERM B' },
    ],
  };
}

/** The demo's timeline: record its story, write it as one HTML file. */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { renderTimeline } from './render.js';
import type { DemoStory } from './story.js';

export { renderTimeline, renderSvg, escapeHtml } from './render.js';
export { StoryRecorder, spans, type DemoStory, type Mark, type Sighting } from './story.js';

/** The file name the demo writes in the directory it is run from. */
export const TIMELINE_FILE = 'demo-timeline.html';

/** Writes `story` as `demo-timeline.html` in `dir` (default: the working directory); returns its absolute path. */
export function writeTimeline(story: DemoStory, dir = process.cwd()): string {
  const path = resolve(dir, TIMELINE_FILE);
  writeFileSync(path, renderTimeline(story));
  return path;
}

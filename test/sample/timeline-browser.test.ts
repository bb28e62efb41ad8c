/**
 * The demo's timeline page in headless Chromium (Debian's `chromium`,
 * driven by playwright-core): the terms render as bars in their replica's
 * lane, in the order they happened, with the gaps and the measured steps;
 * markup in a master's address shows as text. A screenshot goes to
 * test-artifacts/ (gitignored).
 *
 * Outside CI without chromium the suite is skipped with one line; under
 * CI=true a missing browser fails it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderTimeline, type DemoStory } from '../../sample/timeline/index.js';
import { findBinary, requireBinary } from '../support/binaries.js';
import { sampleStory } from './timeline-story.js';

const CHROMIUM = requireBinary(
  'chromium',
  findBinary(['chromium', 'chromium-browser'], process.env.CHROMIUM_PATH),
  'apt-get install chromium',
);
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'];
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

describe.skipIf(!CHROMIUM)('demo timeline in a browser', () => {
  let browser: Browser;
  let dir: string;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: FLAGS });
    dir = mkdtempSync(join(tmpdir(), 'timeline-'));
  });
  afterAll(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Opens the page rendered from `story` as a file, as a user opens the demo's output. */
  async function open(story: DemoStory, name: string): Promise<{ page: Page; errors: string[] }> {
    const file = join(dir, name);
    writeFileSync(file, renderTimeline(story));
    const page = await browser.newPage({ viewport: { width: 1040, height: 800 } });
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(pathToFileURL(file).href);
    return { page, errors };
  }

  async function box(page: Page, selector: string) {
    const b = await page.locator(selector).first().boundingBox();
    if (!b) throw new Error(`${selector} is not rendered`);
    return b;
  }

  it('renders each term in its lane, in time order, with the gaps and the measured steps', async () => {
    const { page, errors } = await open(sampleStory(), 'timeline.html');
    const terms = page.locator('svg g.term');
    expect(await terms.count()).toBe(3);
    const bars = [];
    for (const [term, lane] of [
      [5, 'A'],
      [9, 'B'],
      [12, 'C'],
    ] as const) {
      const bar = await box(page, `svg g.term[data-term="${term}"] rect`);
      expect(
        await page.locator(`svg g.term[data-term="${term}"]`).getAttribute('data-master'),
      ).toBe(lane);
      expect(bar.width).toBeGreaterThan(0);
      expect(bar.height).toBeGreaterThan(0);
      // In the lane labelled with its replica.
      const label = await box(page, `svg text.lane-label >> text="${lane}"`);
      expect(bar.y).toBeLessThan(label.y + label.height);
      expect(bar.y + bar.height).toBeGreaterThan(label.y);
      bars.push(bar);
    }
    // Time runs left to right: each term starts after the previous one ended.
    expect(bars[0]!.x + bars[0]!.width).toBeLessThanOrEqual(bars[1]!.x + 0.5);
    expect(bars[1]!.x + bars[1]!.width).toBeLessThanOrEqual(bars[2]!.x + 0.5);
    // The long terms carry their number on the bar.
    await expect
      .poll(() => page.locator('svg g.term[data-term="5"] text').textContent())
      .toBe('term 5');
    expect(await page.locator('svg g.gap').count()).toBe(3);
    for (const [kind, text] of [
      ['first-election', 'first election 1100 ms'],
      ['failover', 'failover 950 ms'],
      ['handover', 'handover 40 ms'],
    ] as const) {
      const mark = page.locator(`svg g.mark[data-kind="${kind}"] text.mark-label`);
      expect(await mark.textContent()).toContain(text);
      expect(await mark.isVisible()).toBe(true);
    }
    expect(await page.locator('table.terms tbody tr').count()).toBe(3);
    expect(errors).toEqual([]);
    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'demo-timeline.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`demo timeline screenshot: ${shot}`);
    await page.close();
  });

  it('shows markup in an address as text, never as an element', async () => {
    const evil = '<img src=x onerror="document.title=1">';
    const story = {
      ...sampleStory(),
      sightings: [{ master: evil, term: 3, at: 1500 }],
    };
    const { page, errors } = await open(story, 'evil.html');
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('table.terms tbody tr td').nth(1).textContent()).toBe(evil);
    expect(await page.title()).toBe('demo');
    expect(errors).toEqual([]);
    await page.close();
  });
});

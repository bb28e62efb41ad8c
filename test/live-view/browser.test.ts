/**
 * The live view in headless Chromium (Debian's `chromium`, driven by
 * playwright-core; never a browser download): the master shows, a master
 * killed without resigning turns into a deposed term, a gap and a new term
 * without a reload, and store data with markup or control characters shows
 * as text. Screenshots go to test-artifacts/ (gitignored).
 *
 * Outside CI without chromium the suite is skipped with one line; under
 * CI=true a missing browser fails it.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { electionPath, leasePath } from '../../lib/election/index.js';
import { Fleet } from '../election/fleet.js';
import { findBinary, requireBinary } from '../support/binaries.js';
import { startStack } from './helpers.js';

/** What the functions run in the page use of it (they run in the browser, typed here without the DOM lib). */
interface PageNode {
  readonly textContent: string | null;
  readonly dataset: Record<string, string | undefined>;
}
declare const document: {
  querySelector(selector: string): PageNode | null;
  querySelectorAll(selector: string): Iterable<PageNode> & { readonly length: number };
  readonly scripts: { readonly length: number };
};
declare const window: Record<string, unknown>;
declare const performance: { getEntriesByType(type: string): unknown[] };

const CHROMIUM = requireBinary(
  'chromium',
  findBinary(['chromium', 'chromium-browser'], process.env.CHROMIUM_PATH),
  'apt-get install chromium',
);

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const TIMING = { leaseMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 200 };
/** Generous: the page follows the store within a flush, but the machine may be loaded. */
const SEEN_MS = 30_000;

/** Waits until `selector` matches an element in the page. */
async function seen(page: Page, selector: string): Promise<void> {
  await page.waitForSelector(selector, { state: 'attached', timeout: SEEN_MS });
}

/** Waits until the element at `selector` has exactly `text`. */
async function hasText(page: Page, selector: string, text: string): Promise<void> {
  await page.waitForFunction(
    ([s, t]) => document.querySelector(s)?.textContent === t,
    [selector, text] as const,
    { timeout: SEEN_MS },
  );
}

async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = `${ARTIFACTS}${name}`;
  await page.screenshot({ path, fullPage: true });
  console.log(`live view screenshot: ${path}`);
}

describe.skipIf(!CHROMIUM)('live view in a browser', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: FLAGS });
  });
  afterAll(() => browser?.close());

  async function open(url: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    onTestFinished(() => context.close());
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
    onTestFinished(() => expect(problems).toEqual([]));
    await page.goto(url);
    await hasText(page, '#status', 'live');
    // A mark that a reload would wipe out.
    await page.evaluate(() => (window.sameDocument = true));
    return page;
  }

  it('shows the master, then the gap and the new term once it is killed, without a reload', async () => {
    const { server, view } = await startStack({ flushMs: 50 });
    const name = 'live-view-test';
    const fleet = new Fleet(server.uri, name, TIMING);
    onTestFinished(() => fleet.close());
    await fleet.spawn('127.0.0.1:7101');
    await fleet.spawn('127.0.0.1:7102');
    const first = await fleet.nextMasterAfter(-Infinity);

    const page = await open(view.url);
    const card = `[data-election="${name}"]`;
    await hasText(page, `${card} .master`, first.address);
    await hasText(page, `${card} .term`, String(first.token));
    await seen(page, `${card} li[data-kind="term"][data-token="${first.token}"]`);

    const killedAt = fleet.fault('kill the master');
    fleet.signal(first.address, 'SIGKILL');
    const next = await fleet.nextMasterAfter(killedAt);
    expect(next.address).not.toBe(first.address);

    await hasText(page, `${card} .master`, next.address);
    await seen(
      page,
      `${card} li[data-kind="term"][data-token="${first.token}"][data-reason="deposed"]`,
    );
    await seen(page, `${card} li[data-kind="term"][data-token="${next.token}"]`);
    // Newest first: the new term, the gap with no master, the deposed term.
    const entries = await page.evaluate(
      (s) =>
        [...document.querySelectorAll(s)].map(
          (li) => `${li.dataset.kind}:${li.dataset.token ?? ''}`,
        ),
      `${card} .timeline li`,
    );
    expect(entries.slice(0, 3)).toEqual([`term:${next.token}`, 'gap:', `term:${first.token}`]);
    expect(await page.$$eval(`${card} .bar .seg.gap`, (s) => s.length)).toBeGreaterThan(0);
    expect(await page.$$eval(`${card} .bar .silent`, (s) => s.length)).toBeGreaterThan(0);
    expect(
      await page.evaluate(() => ({
        same: window.sameDocument,
        loads: performance.getEntriesByType('navigation').length,
      })),
    ).toEqual({ same: true, loads: 1 });
    // The new master renews: the page follows its lease live.
    await page.waitForFunction(
      (s) => /renewal [2-9]/.test(document.querySelector(s)?.textContent ?? ''),
      `${card} .lease`,
      { timeout: SEEN_MS },
    );
    await screenshot(page, 'live-view.png');
  });

  it('shows store values with markup and control characters as text, never as markup', async () => {
    const { view, client } = await startStack({ flushMs: 50 });
    const page = await open(view.url);
    const img = '<img src=x onerror="window.pwned=1">';
    const script = '<script>window.pwned=2</script>';
    const controls = 'bell\u0007 esc\u001b[31m cr\r lf\n tab\t del\u007f rlo\u202eevil';
    await client.set('/xss/value', 0, `${img}${script}<b>bold</b>`);
    await client.set('/xss/controls', 0, controls);
    const rev = await client.set(electionPath('markup'), 0, img);
    await client.set(
      leasePath('markup'),
      0,
      JSON.stringify({ v: 1, state: 'held', term: rev, holder: script, id: 'x', seq: 0 }),
    );

    await hasText(page, '[data-election="markup"] .master', img);
    await seen(page, '[data-election="markup"] .lease');
    const texts = await page.evaluate(() => ({
      lease: document.querySelector('[data-election="markup"] .lease')!.textContent,
      cells: [...document.querySelectorAll('#tree td.value')].map((td) => td.textContent),
      escapes: [...document.querySelectorAll('#tree td.value .escape')].map((e) => e.textContent),
      // Markup the page does not make itself: none at all.
      injected: document.querySelectorAll('main img, main script, main b:not(:is(h2 *, li *))')
        .length,
      scripts: document.scripts.length,
      pwned: window.pwned,
    }));
    expect(texts.lease).toContain(`by ${script} for term ${rev}`);
    expect(texts.cells).toContain(`${img}${script}<b>bold</b>`);
    // Each control character as an escape in a marked span; a newline also breaks the line.
    expect(texts.cells).toContain(
      'bell\\x07 esc\\x1b[31m cr\\r lf\\n\n tab\\t del\\x7f rlo\\u202eevil',
    );
    expect(texts.escapes).toEqual(['\\x07', '\\x1b', '\\r', '\\n', '\\t', '\\x7f', '\\u202e']);
    expect([texts.injected, texts.scripts, texts.pwned]).toEqual([0, 1, undefined]);
    expect(await page.getByText(img).first().isVisible()).toBe(true);
    await screenshot(page, 'live-view-escaping.png');
  });
});

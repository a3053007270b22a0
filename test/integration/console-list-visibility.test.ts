import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { docker, TestContainers, uniqueApp } from '../helpers/containers.js';

const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));
/** The console's reload period (REFRESH_MS in client/web/console/main.ts). */
const REFRESH_MS = 30_000;

/**
 * The containers list of a console tab that was hidden (another tab in front, the window
 * minimised) for a while: the periodic reload skips a hidden page, and coming back showed the
 * list as it was when the page was left, containers long gone included, until the next reload
 * up to 30 s later. Headless Chromium keeps every page visible whatever is in front (another
 * tab brought to front, a minimised window, an activated target: all tried), so the page is told
 * it is hidden and visible as the browser tells it, by document.visibilityState and the
 * visibilitychange event; the page's clock (Playwright's) stands in for the time away.
 */
describe('the console list when the page comes back into view', () => {
  const containers = new TestContainers();
  const app = uniqueApp('vis');
  const key = (proc: string, n: number) => `${app}/${proc}/${n}`;
  let b: TestBroker;
  let token: string;
  let browser: Browser;
  let page: Page;
  let web2 = '';
  let stopped = '';
  /** GET /api/containers the page has sent. */
  let listRequests = 0;

  const setVisibility = (state: 'hidden' | 'visible') =>
    page.evaluate((s) => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => s });
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => s === 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
    }, state);
  const rowKeys = async () => Promise.all((await page.locator('#container-rows tr').all()).map((r) => r.getAttribute('data-key')));
  /** Until the broker's own list has `present` and lacks `gone` (the engine's events reach it in moments). */
  const brokerLists = async (present: string[], gone: string[]) => {
    for (let i = 0; i < 200; i++) {
      const res = await fetch(`${b.url}/api/containers`, { headers: { authorization: `Bearer ${token}` } });
      const keys = ((await res.json()) as { containers: Array<{ app: string; proc: string; instance: string | number }> }).containers.map((c) => `${c.app}/${c.proc}/${c.instance}`);
      if (present.every((k) => keys.includes(k)) && gone.every((k) => !keys.includes(k))) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`the broker never listed ${present.join(', ')} without ${gone.join(', ')}`);
  };

  beforeAll(async () => {
    if (!existsSync(`${CONSOLE_DIR}index.html`)) throw new Error('dist/console/index.html is missing: run npm run build:web first');
    b = await startTestBroker();
    await containers.entry(app, 'web', 1);
    web2 = await containers.entry(app, 'web', 2);
    stopped = await containers.start({ labels: { 'entry.app': app, 'entry.proc': 'worker', 'entry.instance': '1' }, stopped: true });
    token = await b.mint({ apps: [app] });
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1200, height: 700 } })).newPage();
    page.on('request', (r) => {
      if (new URL(r.url()).pathname === '/api/containers') listRequests++;
    });
    await page.clock.install();
    await page.goto(`${b.url}/`);
    await page.locator('#token-input').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator(`#container-rows tr[data-key="${key('worker', 1)}"]`).waitFor();
  });
  afterAll(async () => {
    await browser?.close();
    await b?.stop();
    await containers.removeAll();
  });

  it('does not reload for a look away shorter than the reload period', async () => {
    await page.clock.fastForward(REFRESH_MS / 2);
    const before = listRequests;
    await setVisibility('hidden');
    await setVisibility('visible');
    // The Refresh button's reload, asked for after: the only one there is.
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/containers');
    await page.locator('#refresh').click();
    await answered;
    expect(listRequests).toBe(before + 1);
  });

  it('reloads a list older than that on coming back, keeping the filter and the keyboard position', async () => {
    await page.locator('#search').fill('web');
    await page.locator('#state-filter').selectOption('running');
    await page.getByRole('button', { name: `Enter ${key('web', 1)}` }).focus();
    expect(await rowKeys()).toEqual([key('web', 1), key('web', 2)]);

    await setVisibility('hidden');
    await docker.getContainer(web2).remove({ force: true });
    await containers.entry(app, 'web', 3);
    await brokerLists([key('web', 3)], [key('web', 2)]);
    // Away for two periods: the timer's reloads skip the hidden page.
    await page.clock.fastForward(2 * REFRESH_MS + 1_000);
    expect(await rowKeys()).toEqual([key('web', 1), key('web', 2)]);

    await setVisibility('visible');
    await page.waitForFunction((gone) => !document.querySelector(`#container-rows tr[data-key="${gone}"]`), key('web', 2), { timeout: 10_000 });
    expect(await rowKeys()).toEqual([key('web', 1), key('web', 3)]);
    expect(await page.locator('#search').inputValue()).toBe('web');
    expect(await page.locator('#state-filter').inputValue()).toBe('running');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe(`Enter ${key('web', 1)}`);
  });

  it('does not tell the failure of a reload older than the list shown over that list', async () => {
    await page.locator('#search').fill('');
    await page.locator('#state-filter').selectOption('');
    const status = page.locator('#list-status');
    const shown = (await status.textContent()) ?? '';
    expect(shown).toMatch(/containers/);
    // The first reload is held by the network, the second answered: then the first fails.
    let held: ((fail: boolean) => Promise<void>) | undefined;
    const heldNow = new Promise<void>((resolve) => {
      void page.route('**/api/containers', async (route) => {
        if (held) return route.continue();
        held = (fail) => (fail ? route.abort('connectionreset') : route.continue());
        resolve();
      });
    });
    await setVisibility('hidden');
    await page.clock.fastForward(2 * REFRESH_MS);
    await setVisibility('visible');
    await heldNow;
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/containers');
    await page.locator('#refresh').click();
    await answered;
    const failed = page.waitForEvent('requestfailed', (r) => new URL(r.url()).pathname === '/api/containers');
    await held!(true);
    await failed;
    // A request answered after the failure: the page has run what followed it by then.
    await page.evaluate(() => fetch('/healthz').then((r) => r.status));
    expect(await status.textContent()).toBe(shown);
    await page.unroute('**/api/containers');
  });

  it('keeps a state chosen when the reload finds no container in it any more', async () => {
    await page.locator('#search').fill('');
    await page.locator('#state-filter').selectOption('');
    const state = (await page.locator(`#container-rows tr[data-key="${key('worker', 1)}"] .state`).textContent()) ?? '';
    expect(state).not.toBe('running');
    await page.locator('#state-filter').selectOption(state);
    expect(await rowKeys()).toEqual([key('worker', 1)]);

    await setVisibility('hidden');
    await docker.getContainer(stopped).remove({ force: true });
    await brokerLists([], [key('worker', 1)]);
    await page.clock.fastForward(2 * REFRESH_MS);
    await setVisibility('visible');
    await page.locator('#list-status', { hasText: '0 of 2 containers' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#state-filter').inputValue()).toBe(state);
    expect(await rowKeys()).toEqual([]);
  });
});

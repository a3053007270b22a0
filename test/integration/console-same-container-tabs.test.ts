import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, typeLine, waitForTerminal } from '../helpers/browser.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';

const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));

/** The console's tabs when one container is entered more than once. */
describe('console tabs on the same container', () => {
  const containers = new TestContainers();
  const app = uniqueApp('tabs');
  const key = `${app}/web/1`;
  let b: TestBroker;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    if (!existsSync(`${CONSOLE_DIR}index.html`)) throw new Error('dist/console/index.html is missing: run npm run build:web first');
    b = await startTestBroker();
    await containers.entry(app, 'web', 1);
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1200, height: 700 } })).newPage();
    await page.goto(`${b.url}/`);
    await page.locator('#token-input').fill(await b.mint({ apps: [app] }));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator(`#container-rows tr[data-key="${key}"]`).waitFor();
  });
  afterAll(async () => {
    await browser?.close();
    await b?.stop();
    await containers.removeAll();
  });

  const tabNames = () => page.locator('.tab .label').allTextContents();

  it('names every open tab apart, also after an earlier one closed', async () => {
    const enter = page.getByRole('button', { name: `Enter ${key}` });
    await enter.click();
    await enter.click();
    await page.locator('.tab[data-state="open"]').nth(1).waitFor();
    expect(await tabNames()).toEqual([key, `${key} (2)`]);

    await page.getByRole('button', { name: `Close ${key}`, exact: true }).click();
    await enter.click();
    await page.locator('.tab[data-state="open"]').nth(1).waitFor();
    await enter.click();
    await page.locator('.tab[data-state="open"]').nth(2).waitFor();
    expect(await tabNames()).toEqual([`${key} (2)`, key, `${key} (3)`]);

    // Each name, and its Close button, leads to its own terminal.
    await page.getByRole('tab', { name: `${key} (3) (open)`, exact: true }).click();
    await typeLine(page, '.panel.active entry-terminal', 'echo third-$((1+2))');
    await waitForTerminal(page, '.panel.active entry-terminal', /^third-3$/m);
    await page.getByRole('button', { name: `Close ${key} (2)`, exact: true }).click();
    expect(await tabNames()).toEqual([key, `${key} (3)`]);
    expect(await page.locator('.panel.active').getAttribute('aria-labelledby')).toBe(await page.getByRole('tab', { name: `${key} (3) (open)`, exact: true }).getAttribute('id'));
  });
});

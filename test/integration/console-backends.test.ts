import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';
import { launchChromium, waitForTerminal } from '../helpers/browser.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { uniqueApp } from '../helpers/containers.js';

/** The console's "Enter" button, in Chromium, into a target on every backend. */
describe.each(BACKENDS.map((make) => make()))('the console entering a target ($kind)', (backend) => {
  const app = uniqueApp('cb');
  let b: TestBroker;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    await backend.target(app, 'web', 1);
    b = await startTestBroker(backend.settings());
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 720 } })).newPage();
  }, backend.setupTimeoutMs);
  afterAll(async () => {
    await browser?.close();
    await b?.stop();
    await backend.cleanup();
  });

  it('lists the target and opens a working terminal in it with Enter', async () => {
    await page.goto(`${b.url}/`);
    await page.locator('#token-input').fill(await b.mint({ apps: [app] }));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator(`#container-rows tr[data-key="${app}/web/1"]`).waitFor();
    await page.getByRole('button', { name: `Enter ${app}/web/1` }).click();
    await page.locator('.tab[data-state="open"]').waitFor();
    await page.keyboard.type('echo $((6*7)) from $(hostname)');
    await page.keyboard.press('Enter');
    const text = await waitForTerminal(page, `.panel[data-key="${app}/web/1"] entry-terminal`, /^42 from /m);
    expect(text).toMatch(/^42 from \S+/m);
  });
});

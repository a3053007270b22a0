import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, mountTerminal, terminalText, typeLine, waitForTerminal } from '../helpers/browser.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { useBrowserBehindProxy } from '../helpers/browser-behind-proxy.js';

const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));

/**
 * <entry-terminal> in Chromium, page and socket through a proxy whose links the test resets:
 * the terminal shows a reconnecting overlay, resumes the same shell, and prints a running
 * loop's lines once; also after the tab was offline.
 */
describe('the browser terminal resumes', () => {
  const containers = new TestContainers();
  const app = uniqueApp('rweb');
  let b: TestBroker;
  let proxy: TcpProxy;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let token = '';

  beforeAll(async () => {
    if (!existsSync(`${CONSOLE_DIR}entry-terminal.js`)) throw new Error('dist/console/entry-terminal.js is missing: run npm run build:web first');
    b = await startTestBroker();
    proxy = new TcpProxy(b.url);
    await proxy.start();
    await containers.entry(app, 'web', 1);
    token = await b.mint({ apps: [app] });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    page = await context.newPage();
    // The page and the socket both go through the proxy: one origin, one link to cut.
    await page.goto(`${proxy.url}/healthz`);
    await mountTerminal(page, app, token, { recordStates: true });
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.stop();
    await b?.stop();
    await containers.removeAll();
  });

  const overlay = () => page.locator('#t .entry-terminal-overlay');

  it('keeps the shell and its variables; a running loop prints each line once; the overlay comes and goes', async () => {
    await typeLine(page, '#t', 'KEPT=tab-$((6*7)); for i in $(seq 1 8); do echo "tick $i"; sleep 0.5; done');
    await waitForTerminal(page, '#t', /^tick 2$/m);
    const cut = Date.now();
    proxy.cut(2_000);
    await overlay().waitFor({ state: 'visible', timeout: 5_000 });
    expect(await overlay().textContent()).toMatch(/reconnecting… \d+ s left/);
    // Said to a screen reader once, without the countdown.
    expect(await overlay().getByRole('status').textContent()).toBe('Connection lost: reconnecting…');
    await overlay().waitFor({ state: 'detached', timeout: 20_000 });
    const back = Date.now() - cut;
    await waitForTerminal(page, '#t', /^tick 8$/m);
    await typeLine(page, '#t', 'echo "kept:$KEPT"');
    const text = await waitForTerminal(page, '#t', /^kept:tab-42$/m);
    for (let i = 1; i <= 8; i++) expect(text.match(new RegExp(`^tick ${i}$`, 'gm'))?.length, `tick ${i}`).toBe(1);
    expect(await page.evaluate('window.states')).toEqual(['connecting', 'open', 'reconnecting', 'open']);
    console.log(`resume in the browser: back ${back} ms after the cut (link down 2000 ms)`);
  }, 60_000);

  it('after the tab was offline: resumes once it is online again, input typed meanwhile arrives once', async () => {
    await context.setOffline(true);
    proxy.cut();
    await overlay().waitFor({ state: 'visible', timeout: 5_000 });
    await page.waitForFunction(() => (document.querySelector('#t .entry-terminal-overlay')?.textContent ?? '').includes('offline'));
    // Typed while offline.
    await page.locator('#t .xterm-helper-textarea').focus();
    await page.keyboard.type('echo "typed:$KEPT"');
    await page.keyboard.press('Enter');
    await new Promise((r) => setTimeout(r, 3_000));
    const online = Date.now();
    await context.setOffline(false);
    await overlay().waitFor({ state: 'detached', timeout: 10_000 });
    const back = Date.now() - online;
    const text = await waitForTerminal(page, '#t', /^typed:tab-42$/m);
    expect(text.match(/^typed:tab-42$/gm)?.length).toBe(1);
    console.log(`resume in the browser after 3 s offline: back ${back} ms after going online`);
    expect(await terminalText(page, '#t')).not.toMatch(/connection lost/);
  }, 60_000);

  it('goes on when the element is moved in the page or given a new ticket provider, and resumes with the new one', async () => {
    await typeLine(page, '#t', 'MOVED=still-$((40+2))');
    const before = ((await page.evaluate('window.states')) as string[]).length;
    // A framework's re-render: the element put somewhere else, its provider made again.
    await page.evaluate(`(async () => {
      const { ticketsFrom } = await import('/entry-terminal.js');
      const t = document.querySelector('#t');
      const box = document.createElement('div');
      document.body.append(box);
      box.append(t);
      window.newProviderCalls = 0;
      const provider = ticketsFrom(${JSON.stringify(token)});
      t.ticketProvider = (target) => { window.newProviderCalls++; return provider(target); };
    })()`);
    proxy.cut();
    await overlay().waitFor({ state: 'visible', timeout: 5_000 });
    await overlay().waitFor({ state: 'detached', timeout: 20_000 });
    await typeLine(page, '#t', 'echo "moved:$MOVED"');
    await waitForTerminal(page, '#t', /^moved:still-42$/m);
    expect(await page.evaluate('window.newProviderCalls')).toBeGreaterThanOrEqual(1);
    // The same session throughout: it broke and came back, it was never started again.
    expect(((await page.evaluate('window.states')) as string[]).slice(before)).toEqual(['reconnecting', 'open']);
  }, 60_000);
});

/**
 * A tab that comes back after its token expired: the ticket for the resume is refused for good
 * (401). Tried again and again for the grace period, each refusal counted as a failed login
 * against the address, and so against everyone behind it.
 */
describe('the browser terminal whose token expired while its link was down', () => {
  const app = uniqueApp('rexp');
  const setUp = useBrowserBehindProxy(app, { 'clock-tolerance': 0 });

  it('ends the session view at the first refusal, saying why, rather than asking again for the grace period', async () => {
    const { b, proxy, browser } = setUp;
    const page = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage();
    await page.goto(`${proxy.url}/healthz`);
    // Long enough for the page to load and open the session on a loaded machine (exp is in whole
    // seconds: 10 s is 9 to 10).
    const token = await b.mint({ apps: [app] }, { expiresIn: '10s' });
    const expiresAt = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp * 1000;
    await mountTerminal(page, app, token, { recordStates: true });
    await page.locator('#t').waitFor({ state: 'attached' });
    await page.evaluate(() => document.querySelector('#t')!.addEventListener('entry-close', (e) => ((window as unknown as { ended: unknown }).ended = (e as CustomEvent).detail)));
    await typeLine(page, '#t', 'echo up-$((6*7))');
    await waitForTerminal(page, '#t', /^up-42$/m);
    // Past the token's expiry (whole seconds in `exp`), the link breaks.
    await page.waitForFunction((at) => Date.now() > at + 1_000, expiresAt, { timeout: 20_000 });
    const cut = Date.now();
    proxy.cut();
    const closed = (await page.waitForFunction(() => (window as unknown as { ended?: { code: string } }).ended, undefined, { timeout: 15_000 })).jsonValue();
    expect(await closed).toMatchObject({ code: 'ENTRY_TOKEN_EXPIRED' });
    // One refusal, not one a second for the 60 s grace period.
    expect(Date.now() - cut).toBeLessThan(15_000);
    const failures = b.logs.filter((l) => l.includes('"auth.failure"') || l.includes('auth failure')).length;
    expect(failures).toBeLessThanOrEqual(2);
    expect(await terminalText(page, '#t')).toMatch(/could not get a ticket: .*expired/);
  }, 60_000);
});

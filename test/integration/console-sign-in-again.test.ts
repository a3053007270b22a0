import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { holdRequests, terminalText, typeLine, waitForTerminal } from '../helpers/browser.js';
import { useBrowserBehindProxy } from '../helpers/browser-behind-proxy.js';
import { uniqueApp } from '../helpers/containers.js';

const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));
const terminalOf = (key: string) => `.panel[data-key="${key}"] entry-terminal`;

/**
 * The console's terminals when its token is refused and someone signs in again: the sessions
 * left open belong to the user who opened them, and go on with that user's next token.
 */
describe('the console signed in again', () => {
  const app = uniqueApp('again');
  const key = `${app}/web/1`;
  const setUp = useBrowserBehindProxy(app, { 'clock-tolerance': 0 });

  beforeAll(() => {
    if (!existsSync(`${CONSOLE_DIR}index.html`)) throw new Error('dist/console/index.html is missing: run npm run build:web first');
  });

  async function signIn(page: Page, token: string): Promise<void> {
    await page.locator('#token-input').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator(`#container-rows tr[data-key="${key}"]`).waitFor();
  }

  async function openShell(page: Page, token: string): Promise<void> {
    await page.goto(`${setUp.proxy.url}/`);
    await signIn(page, token);
    await page.getByRole('button', { name: `Enter ${key}` }).click();
    await page.locator('.tab[data-state="open"]').waitFor();
  }

  it('resumes a terminal whose token expired while its link was down with the token signed in next', async () => {
    const { b, proxy, browser } = setUp;
    const page = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage();
    const expiresAt = Math.floor(Date.now() / 1000) + 8;
    await openShell(page, await b.mint({ apps: [app] }, { expiresIn: expiresAt }));
    await typeLine(page, terminalOf(key), 'KEPT=kept-$((6*7))');
    expect(b.broker.sessionCount).toBe(1);
    // Past the token's expiry (whole seconds in `exp`), the link breaks.
    await page.waitForFunction((at) => Date.now() > at, expiresAt * 1000 + 500, { timeout: 20_000 });
    proxy.cut();
    // The resume's ticket is refused: the form asks for a token; the session waits for it.
    await page.locator('#sign-in-error', { hasText: /expired.*Sign in again as alice/ }).waitFor({ timeout: 15_000 });
    expect(await page.locator('.tab').getAttribute('data-state')).toBe('reconnecting');
    expect(b.broker.sessionCount).toBe(1);
    await signIn(page, await b.mint({ apps: [app] }));
    await page.locator('.tab[data-state="open"]').waitFor({ timeout: 20_000 });
    await typeLine(page, terminalOf(key), 'echo "back:$KEPT"');
    await waitForTerminal(page, terminalOf(key), /^back:kept-42$/m);
    expect(await terminalText(page, terminalOf(key))).not.toMatch(/could not get a ticket/);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect.poll(() => b.broker.sessionCount, { timeout: 10_000 }).toBe(0);
  }, 90_000);

  it('says why a new session did not open when the token is refused for its ticket, and opens one once signed in again', async () => {
    const { b, browser } = setUp;
    const page = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage();
    await openShell(page, await b.mint({ apps: [app] }));
    const sel = terminalOf(key);
    await typeLine(page, sel, 'exit 3');
    await waitForTerminal(page, sel, /exited with code 3\s*\n\[press Enter to reconnect\]/);
    // The token has expired by the time Enter asks for a new session's ticket (the list, not
    // reloaded while the tab was hidden, had not noticed).
    const expired = await b.mint({ apps: [app] }, { expiresIn: Math.floor(Date.now() / 1000) - 120 });
    await page.route('**/api/tickets', (route) => route.continue({ headers: { ...route.request().headers(), authorization: `Bearer ${expired}` } }));
    await page.keyboard.press('Enter');
    // At once, well before the 15 s bound of a new session, which said "no answer from the broker".
    await waitForTerminal(page, sel, /entry: could not get a ticket: access token expired/, 8_000);
    expect(await page.locator('.tab').getAttribute('data-state')).toBe('closed');
    await page.locator('#sign-in-error', { hasText: /expired/ }).waitFor();
    // Its one terminal's session has ended: nothing is said to keep running.
    expect(await page.locator('#sign-in-error').textContent()).toBe('access token expired: get a new one (enter login)');
    await page.unroute('**/api/tickets');
    await signIn(page, await b.mint({ apps: [app] }));
    await page.locator('.tab').click();
    await page.keyboard.press('Enter');
    await page.locator('.tab[data-state="open"]').waitFor();
    await typeLine(page, sel, 'echo again-$((6*7))');
    await waitForTerminal(page, sel, /^again-42$/m);
    expect(await terminalText(page, sel)).not.toMatch(/no answer from the broker/);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect.poll(() => b.broker.sessionCount, { timeout: 10_000 }).toBe(0);
  }, 60_000);

  it('ends the terminals left open when another user signs in, rather than handing them over', async () => {
    const { b, browser } = setUp;
    const page = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage();
    await openShell(page, await b.mint({ apps: [app] }));
    expect(b.broker.sessionCount).toBe(1);
    // The broker refuses the token at the next listing (401), as when it has expired.
    const expired = await b.mint({ apps: [app] }, { expiresIn: Math.floor(Date.now() / 1000) - 120 });
    await page.route('**/api/containers', (route) => route.continue({ headers: { ...route.request().headers(), authorization: `Bearer ${expired}` } }));
    await page.locator('#refresh').click();
    await page.locator('#sign-in-error', { hasText: /signing in as another user or signing out ends it/ }).waitFor();
    await page.unroute('**/api/containers');
    // Ending them does not wait for a token.
    expect(await page.getByRole('button', { name: 'Sign out' }).isVisible()).toBe(true);
    expect(await page.locator('entry-terminal').count()).toBe(1);
    await signIn(page, await b.mint({ apps: [app] }, { user: 'bob' }));
    expect(await page.locator('#who').textContent()).toBe('bob');
    expect(await page.locator('entry-terminal').count()).toBe(0);
    await expect.poll(() => b.broker.sessionCount, { timeout: 10_000 }).toBe(0);
  }, 60_000);

  it('shows the next user none of the containers of the user who signed out, nor a reload of theirs answered late', async () => {
    const { b, proxy, browser } = setUp;
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    await page.goto(`${proxy.url}/`);
    await signIn(page, await b.mint({ apps: [app] }));
    // From here every containers ask waits for the test to let it through, in the order asked.
    const { routes: held, count: heldCount } = await holdRequests(page, '**/api/containers');
    await page.locator('#refresh').click();
    await heldCount(1);
    await page.getByRole('button', { name: 'Sign out' }).click();
    expect(await page.locator('#container-rows tr').count()).toBe(0);

    await page.locator('#token-input').fill(await b.mint({ apps: [`${app}-other`] }, { user: 'bob' }));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await heldCount(2);
    expect(await page.locator('#container-rows tr').count()).toBe(0);
    // Every row ever put in the list from here on.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { seenRows: string[] }).seenRows = seen;
      new MutationObserver(() => document.querySelectorAll<HTMLElement>('#container-rows tr').forEach((tr) => seen.push(tr.dataset['key'] ?? ''))).observe(document.querySelector('#container-rows')!, { childList: true });
    });
    // The signed-out user's reload is answered first, then the new user's.
    const first = page.waitForEvent('requestfinished', (r) => r === held[0]!.request());
    await held[0]!.continue();
    await first;
    // A request answered after it: the page has run what followed the answer by then.
    await page.evaluate(() => fetch('/healthz').then((r) => r.status));
    await held[1]!.continue();
    await page.locator('#list-status', { hasText: 'No container you may enter is running.' }).waitFor({ timeout: 10_000 });
    expect(await page.evaluate(() => (window as unknown as { seenRows: string[] }).seenRows)).toEqual([]);
    expect(await page.locator('#container-rows tr').count()).toBe(0);
    await page.unroute('**/api/containers');
    await context.close();
  }, 60_000);

  it('keeps the user signed in again when a reload made with the refused token is refused after it', async () => {
    const { b, proxy, browser } = setUp;
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    await page.goto(`${proxy.url}/`);
    const expiresAt = Math.floor(Date.now() / 1000) + 4;
    await signIn(page, await b.mint({ apps: [app] }, { expiresIn: expiresAt }));
    const { routes: held, count: heldCount } = await holdRequests(page, '**/api/containers');
    // Two reloads out with the token, let through once it has expired (whole seconds in `exp`).
    await page.locator('#refresh').click();
    await page.locator('#refresh').click();
    await heldCount(2);
    await page.waitForFunction((at) => Date.now() > at, expiresAt * 1000 + 500, { timeout: 20_000 });
    await held[0]!.continue();
    await page.locator('#sign-in-error', { hasText: /expired/ }).waitFor({ timeout: 10_000 });
    const refused = held.length;

    await page.locator('#token-input').fill(await b.mint({ apps: [app] }));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await heldCount(refused + 1);
    await page.locator('#console-view').waitFor();
    // The other reload of the expired token is refused now, after the sign-in.
    for (const route of held.slice(1, refused)) {
      const finished = page.waitForEvent('requestfinished', (r) => r === route.request());
      await route.continue();
      expect((await (await finished).response())?.status()).toBe(401);
    }
    // A request answered after it: the page has run what followed the refusal by then.
    await page.evaluate(() => fetch('/healthz').then((r) => r.status));
    expect(await page.locator('#sign-in-view').isHidden()).toBe(true);
    for (const route of held.slice(refused)) await route.continue();
    await page.locator(`#container-rows tr[data-key="${key}"]`).waitFor({ timeout: 10_000 });
    expect(await page.locator('#sign-in-view').isHidden()).toBe(true);
    await page.unroute('**/api/containers');
    await context.close();
  }, 60_000);

  it('keeps an admin signed in again when a sessions reload made with the refused token is refused after it', async () => {
    const { b, proxy, browser } = setUp;
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    await page.goto(`${proxy.url}/`);
    const expiresAt = Math.floor(Date.now() / 1000) + 4;
    const refusedToken = await b.mint({ roles: ['entry-admin'] }, { expiresIn: expiresAt });
    await signIn(page, refusedToken);
    const { routes: held, count: heldCount } = await holdRequests(page, '**/api/sessions');
    // Two reloads out with the token (the view's own and the button's), let through once it has expired.
    await page.locator('#sessions-tab').click();
    await page.locator('#sessions-refresh').click();
    await heldCount(2);
    await page.waitForFunction((at) => Date.now() > at, expiresAt * 1000 + 500, { timeout: 20_000 });
    await held[0]!.continue();
    await page.locator('#sign-in-error', { hasText: /expired/ }).waitFor({ timeout: 10_000 });

    await page.locator('#token-input').fill(await b.mint({ roles: ['entry-admin'] }));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#console-view').waitFor();
    const withRefused = held.slice(1).filter((r) => r.request().headers()['authorization'] === `Bearer ${refusedToken}`);
    expect(withRefused.length).toBeGreaterThan(0);
    for (const route of withRefused) {
      const finished = page.waitForEvent('requestfinished', (r) => r === route.request());
      await route.continue();
      expect((await (await finished).response())?.status()).toBe(401);
    }
    // A request answered after it: the page has run what followed the refusal by then.
    await page.evaluate(() => fetch('/healthz').then((r) => r.status));
    expect(await page.locator('#sign-in-view').isHidden()).toBe(true);
    for (const route of held.slice(1).filter((r) => !withRefused.includes(r))) await route.continue();
    await page.unroute('**/api/sessions');
    await context.close();
  }, 60_000);

  it('keeps an admin signed in again when an audit page asked for with the refused token is refused after it', async () => {
    const { b, proxy, browser } = setUp;
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    await page.goto(`${proxy.url}/`);
    const expiresAt = Math.floor(Date.now() / 1000) + 4;
    const refusedToken = await b.mint({ roles: ['entry-admin'] }, { expiresIn: expiresAt });
    await signIn(page, refusedToken);
    const audits = await holdRequests(page, '**/api/audit**');
    // The audit view's first page is asked for as it opens, and held; back to the containers.
    await page.locator('#audit-tab').click();
    await audits.count(1);
    const held = audits.routes[0]!;
    await page.locator('#containers-tab').click();
    await page.waitForFunction((at) => Date.now() > at, expiresAt * 1000 + 500, { timeout: 20_000 });
    await page.locator('#refresh').click();
    await page.locator('#sign-in-error', { hasText: /expired/ }).waitFor({ timeout: 10_000 });

    await page.locator('#token-input').fill(await b.mint({ roles: ['entry-admin'] }));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#console-view').waitFor();
    expect(held.request().headers()['authorization']).toBe(`Bearer ${refusedToken}`);
    const finished = page.waitForEvent('requestfinished', (r) => r === held.request());
    await held.continue();
    expect((await (await finished).response())?.status()).toBe(401);
    // A request answered after it: the page has run what followed the refusal by then.
    await page.evaluate(() => fetch('/healthz').then((r) => r.status));
    expect(await page.locator('#sign-in-view').isHidden()).toBe(true);
    await page.unroute('**/api/audit**');
    await context.close();
  }, 60_000);
});

describe('the console signed out while a terminal waits for a sign-in', () => {
  const app = uniqueApp('out');
  const key = `${app}/web/1`;
  // A short grace: the session the page gave up ends soon after, unless something resumes it.
  const setUp = useBrowserBehindProxy(app, { 'clock-tolerance': 0, 'resume-grace': 6_000 });

  it('ends it for good: signing in again does not bring the closed terminal back', async () => {
    const { b, proxy, browser } = setUp;
    const page = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage();
    const expiresAt = Math.floor(Date.now() / 1000) + 6;
    await page.goto(`${proxy.url}/`);
    await page.locator('#token-input').fill(await b.mint({ apps: [app] }, { expiresIn: expiresAt }));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: `Enter ${key}` }).click();
    await page.locator('.tab[data-state="open"]').waitFor();
    await page.waitForFunction((at) => Date.now() > at, expiresAt * 1000 + 500, { timeout: 20_000 });
    proxy.cut();
    await page.locator('#sign-in-error', { hasText: /Sign in again as alice/ }).waitFor({ timeout: 15_000 });
    await page.getByRole('button', { name: 'Sign out' }).click();
    expect(await page.locator('entry-terminal').count()).toBe(0);
    await page.locator('#token-input').fill(await b.mint({ apps: [app] }));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator(`#container-rows tr[data-key="${key}"]`).waitFor();
    // Nothing resumes it: the broker ends it when its grace runs out.
    await expect.poll(() => b.broker.sessionCount, { timeout: 20_000 }).toBe(0);
    expect(await page.locator('entry-terminal').count()).toBe(0);
    expect(b.logs.filter((l) => l.includes('"audit":"session.resumed"'))).toEqual([]);
  }, 60_000);
});

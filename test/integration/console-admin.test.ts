import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page, WebSocket as PageSocket } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResponseType } from '../../proto/codec.js';
import { launchChromium, typeLine, waitForTerminal } from '../helpers/browser.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { openCommand } from '../helpers/sessions.js';
import type { WireClient } from '../helpers/wire-client.js';

const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));

/**
 * The console's admin views in a real browser against a real broker and a real container:
 * live sessions (watch, kill), the audit trail and the replay of a recording.
 */
describe('web console for admins in Chromium', () => {
  const containers = new TestContainers();
  const app = uniqueApp('adm');
  const target = { app, proc: 'web', instance: 1 };
  let b: TestBroker;
  let adminToken: string;
  let userToken: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let user: WireClient;
  let sessionId: string;
  /** Frames the page sent on /watch sockets. */
  const watchFramesSent: unknown[] = [];

  const shot = (name: string, p: Page = page) => p.screenshot({ path: `${ARTIFACTS}${name}.png` });
  const signIn = async (p: Page, token: string) => {
    await p.goto(`${b.url}/`);
    await p.locator('#token-input').fill(token);
    await p.locator('#token-input').press('Enter');
    await p.locator('#console-view').waitFor();
  };
  const watchSel = () => `.panel[data-key="watch:${sessionId}"] entry-terminal`;
  const replayPanel = () => `.panel[data-key="replay:${sessionId}"]`;
  const userText = () => new TextDecoder().decode(Buffer.concat(user.messages.filter((m) => m.msgType === ResponseType.STDOUT).map((m) => m.content)));

  beforeAll(async () => {
    if (!existsSync(`${CONSOLE_DIR}index.html`)) throw new Error('dist/console/index.html is missing: run npm run build:web first');
    mkdirSync(ARTIFACTS, { recursive: true });
    b = await startTestBroker();
    await containers.entry(app, 'web', 1);
    adminToken = await b.mint({ roles: ['entry-admin'] }, { user: 'overseer' });
    userToken = await b.mint({ apps: [app] }, { user: 'watched' });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
    page = await context.newPage();
    page.on('websocket', (ws: PageSocket) => {
      if (new URL(ws.url()).pathname === '/watch') ws.on('framesent', (f) => watchFramesSent.push(f.payload));
    });
  });
  afterAll(async () => {
    await browser?.close();
    await b?.stop();
    await containers.removeAll();
  });

  it('shows no Sessions or Audit view to a user without the admin role', async () => {
    await signIn(page, userToken);
    await page.locator(`#container-rows tr[data-key="${app}/web/1"]`).waitFor();
    expect(await page.locator('#views').isHidden()).toBe(true);
    expect(await page.getByRole('tab', { name: /Sessions|Audit/ }).count()).toBe(0);
    // The view keys open nothing: they go to the terminal as any Alt chord does (ESC S, ESC A).
    await page.getByRole('button', { name: `Enter ${app}/web/1` }).focus();
    await page.keyboard.press('Enter');
    await page.locator('.tab[data-state="open"]').waitFor();
    await page.keyboard.type('cat -v');
    await page.keyboard.press('Enter');
    await page.keyboard.press('Alt+Shift+S');
    await page.keyboard.press('Alt+Shift+A');
    await page.keyboard.press('Enter');
    await waitForTerminal(page, `.panel[data-key="${app}/web/1"] entry-terminal`, /^\^\[S\^\[A$/m);
    expect(await page.locator('#console-view').getAttribute('data-view')).toBe('containers');
    expect(await page.locator('#sessions-view').isHidden()).toBe(true);
    expect(await page.locator('#audit-view').isHidden()).toBe(true);
    // Its session ends before the next test counts the live ones.
    await page.keyboard.press('Control+D');
    await page.keyboard.type('exit');
    await page.keyboard.press('Enter');
    await page.locator('.tab[data-state="closed"]').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#sign-in-view').waitFor();
  });

  it("lists a user's live session in the Sessions view", async () => {
    user = await openCommand(b.wsUrl, userToken, target, [], true);
    user.type('echo READY\r');
    await user.waitFor(() => userText().includes('READY\r\n'), 'the shell');

    await signIn(page, adminToken);
    expect(await page.locator('#who').textContent()).toBe('overseer · admin');
    await page.getByRole('tab', { name: /Sessions/ }).click();
    const row = page.locator('#session-rows tr', { hasText: 'watched' });
    await row.waitFor();
    sessionId = (await row.getAttribute('data-id')) ?? '';
    expect(sessionId).toMatch(/^[A-Za-z0-9-]+$/);
    const cells = await row.locator('td').allTextContents();
    expect(cells.slice(0, 3)).toEqual(['watched', `${app}/web/1`, '127.0.0.1']);
    expect(cells[3]).toMatch(/^\d+ s$/);
    expect(cells[5]).toBe('(shell)');
    expect(await page.locator('#sessions-count').textContent()).toBe('1');
    await shot('console-sessions');
  });

  it('watches it read-only: live output shows, keys typed in the watch tab go nowhere', async () => {
    // From the keyboard: "/" to the filter, ↓ to the row's Watch button, Enter.
    await page.keyboard.press('/');
    await page.waitForFunction("document.activeElement?.id === 'sessions-filter'");
    await page.keyboard.press('ArrowDown');
    await page.waitForFunction("document.activeElement?.dataset.action === 'watch'");
    await page.keyboard.press('Enter');
    await page.locator(`.tab-item.active .tab-watch[data-state="open"]`).waitFor();
    // The broker tells the user once the watch is on.
    await user.waitFor(() => userText().includes('overseer is watching this session'), 'the watch banner');
    user.type('echo seen-$((6*7))\r');
    await waitForTerminal(page, watchSel(), /^seen-42$/m);

    // Typing into the watch tab: nothing leaves the page, nothing reaches the container.
    await typeLine(page, watchSel(), 'touch /tmp/watcher-was-here');
    user.type('ls /tmp/watcher-was-here 2>&1 | tail -1\r');
    await user.waitFor(() => /No such file/.test(userText()), 'proof that the watcher typed nothing');
    await waitForTerminal(page, watchSel(), /No such file/);
    expect(watchFramesSent).toEqual([]);
    expect(await page.locator(`${watchSel()} .xterm`).count()).toBe(1);
    await shot('console-watch');
  });

  it('kills it after a confirmation: the user gets ENTRY_KILLED, the watch tab shows the end', async () => {
    await page.getByRole('button', { name: `Kill the session of watched on ${app}/web/1` }).click();
    const dialog = page.locator('#kill-dialog');
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain(`watched on ${app}/web/1`);
    // Cancel first: nothing happens.
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect(user.ws.readyState).toBe(user.ws.OPEN);

    await page.getByRole('button', { name: `Kill the session of watched on ${app}/web/1` }).click();
    await page.getByRole('button', { name: 'Kill session' }).click();
    const closed = await user.closed;
    expect(user.closeMessage()?.code).toBe('ENTRY_KILLED');
    expect(new TextDecoder().decode(user.closeMessage()?.content)).toMatch(/session ended by an administrator: by overseer/);
    expect(closed.code).toBeGreaterThan(1000);
    await waitForTerminal(page, watchSel(), /the watched session ended/);
    await page.locator(`.tab-item .tab-watch[data-state="closed"]`).waitFor();
    await page.locator(`#session-rows tr[data-id="${sessionId}"]`).waitFor({ state: 'detached' });
    await page.locator('#sessions-status', { hasText: 'No live session' }).waitFor();
  });

  it("lists the session's events in the Audit view, and finds the typed command by text", async () => {
    await page.keyboard.press('Alt+Shift+A');
    await page.waitForFunction("document.activeElement?.name === 'q'");
    await page.locator('#audit-form [name="user"]').fill('watched');
    await page.locator('#audit-form [name="user"]').press('Enter');
    const rows = page.locator(`#audit-rows tr[data-session="${sessionId}"]`);
    await page.locator(`#audit-rows tr[data-session="${sessionId}"][data-type="session.end"]`).waitFor();
    const types = await rows.evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset['type']));
    for (const t of ['session.start', 'command', 'session.watch', 'session.kill', 'session.end']) expect(types).toContain(t);
    // Newest first.
    expect(types[0]).toBe('session.end');
    expect(types.at(-1)).toBe('session.start');
    const end = page.locator(`#audit-rows tr[data-session="${sessionId}"][data-type="session.end"]`);
    expect(await end.locator('td.details').textContent()).toMatch(/ENTRY_KILLED/);
    const watch = page.locator(`#audit-rows tr[data-session="${sessionId}"][data-type="session.watch"]`);
    expect(await watch.locator('td.details').textContent()).toMatch(/watched by overseer/);

    await page.locator('#audit-form [name="user"]').fill('');
    await page.locator('#audit-form [name="q"]').fill('seen-');
    await page.locator('#audit-form [name="q"]').press('Enter');
    // Only the command whose line has the text is left.
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll<HTMLElement>('#audit-rows tr')];
      return rows.length > 0 && rows.every((r) => r.dataset['type'] === 'command' && r.querySelector('code.line')?.textContent?.includes('seen-'));
    });
    expect(await page.locator('#audit-rows code.line').allTextContents()).toEqual(['echo seen-$((6*7))']);
    await shot('console-audit');
  });

  it('pages through the audit trail, and filters by time range', async () => {
    const pager = await openCommand(b.wsUrl, await b.mint({ apps: [app] }, { user: 'pager' }), target, [], true);
    for (let i = 1; i <= 60; i++) pager.type(`: page-${i}\r`);
    pager.type('echo paged-$((30*2))\r');
    await pager.waitFor(() => pager.stdoutText().includes('paged-60'), 'the typed lines');
    pager.ws.close();
    await pager.closed;

    await page.getByRole('button', { name: 'Clear' }).click();
    await page.locator('#audit-form [name="user"]').fill('pager');
    await page.locator('#audit-form [name="type"]').selectOption('command');
    const lines = () => page.locator('#audit-rows code.line').allTextContents();
    // 61 command events, 50 to a page.
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll<HTMLElement>('#audit-rows tr')];
      return rows.length === 50 && rows.every((r) => r.dataset['type'] === 'command' && r.querySelector('td.user')?.textContent === 'pager');
    });
    await page.locator('#audit-more').waitFor();
    expect(await lines()).toHaveLength(50);
    expect((await lines())[0]).toBe('echo paged-$((30*2))');
    await page.locator('#audit-more').click();
    await page.locator('#audit-more').waitFor({ state: 'hidden' });
    const all = await lines();
    expect(all).toHaveLength(61);
    expect(all.at(-1)).toBe(': page-1');
    expect(new Set(all).size).toBe(61);

    // A time range that ends before any of it: nothing.
    await page.locator('#audit-form [name="until"]').fill('2001-01-01T00:00:00');
    await page.locator('#audit-form [name="user"]').press('Enter');
    await page.locator('#audit-status', { hasText: 'No event matches.' }).waitFor();
    expect(await page.locator('#audit-rows tr').count()).toBe(0);
    await page.locator('#audit-form [name="until"]').fill('');
    await page.locator('#audit-form [name="since"]').fill('2001-01-01T00:00:00');
    await page.locator('#audit-form [name="user"]').press('Enter');
    await page.locator('#audit-more').waitFor();
    await page.getByRole('button', { name: 'Clear' }).click();
  });

  it('replays the recording from the audit trail', async () => {
    const csp = (await fetch(`${b.url}/`)).headers.get('content-security-policy') ?? '';
    await page.locator('#audit-form [name="q"]').fill('');
    await page.locator('#audit-form [name="session"]').fill(sessionId);
    await page.locator('#audit-form [name="session"]').press('Enter');
    const end = page.locator(`#audit-rows tr[data-session="${sessionId}"][data-type="session.end"]`);
    await end.waitFor();
    await end.getByRole('button', { name: /^Replay/ }).click();
    const panel = page.locator(replayPanel());
    await panel.locator('.replay-stage[data-player]').waitFor();
    // asciinema-player where the page may run WebAssembly, the xterm.js player where not.
    const expected = /'wasm-unsafe-eval'|'unsafe-eval'/.test(csp) ? 'asciinema' : 'xterm';
    expect(await panel.locator('.replay-stage').getAttribute('data-player')).toBe(expected);
    const stageText = () => page.locator(`${replayPanel()} .replay-stage`).innerText();
    await page.waitForFunction((sel) => /seen-42/.test((document.querySelector(sel) as HTMLElement | null)?.innerText ?? ''), `${replayPanel()} .replay-stage`, { timeout: 30_000 });
    await shot('console-replay');
    // The keyboard went to the player, whose keys (space, ←/→) then work.
    await page.waitForFunction(`document.activeElement?.matches('${replayPanel()} .cast-player, ${replayPanel()} .ap-wrapper')`);
    if (expected === 'xterm') {
      // The basic player's controls: back to the start (an empty screen), then play again.
      await panel.locator('.replay-toggle[aria-label="Play"]').waitFor();
      await panel.getByLabel('Position').fill('0');
      await page.waitForFunction((sel) => !/seen-42/.test((document.querySelector(sel) as HTMLElement | null)?.innerText ?? ''), `${replayPanel()} .replay-stage`);
      expect(await stageText()).not.toContain('READY');
      await panel.getByRole('button', { name: 'Play' }).click();
      await page.waitForFunction((sel) => /seen-42/.test((document.querySelector(sel) as HTMLElement | null)?.innerText ?? ''), `${replayPanel()} .replay-stage`, { timeout: 30_000 });
    }
  });

  it('replays with asciinema-player where the page may run WebAssembly', async () => {
    // The broker's CSP as it would be with script-src 'wasm-unsafe-eval'.
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 }, bypassCSP: true });
    try {
      const p = await ctx.newPage();
      await signIn(p, adminToken);
      await p.getByRole('tab', { name: 'Audit' }).click();
      await p.locator('#audit-form [name="session"]').fill(sessionId);
      await p.locator('#audit-form [name="session"]').press('Enter');
      await p.locator(`#audit-rows tr[data-session="${sessionId}"][data-type="session.start"]`).getByRole('button', { name: /^Replay/ }).click();
      const panel = p.locator(replayPanel());
      await panel.locator('.replay-stage[data-player="asciinema"]').waitFor();
      await panel.locator('.ap-term-text').waitFor();
      await p.waitForFunction((sel) => /seen-42/.test((document.querySelector(sel) as HTMLElement | null)?.innerText ?? ''), `${replayPanel()} .ap-term-text`, { timeout: 30_000 });
      // Speed 8×: a new player starts where the old one was, and still shows the screen.
      await panel.getByLabel('Speed').selectOption('8');
      await p.waitForFunction((sel) => /seen-42/.test((document.querySelector(sel) as HTMLElement | null)?.innerText ?? ''), `${replayPanel()} .ap-term-text`, { timeout: 30_000 });
      expect(await panel.locator('.ap-term-text').count()).toBe(1);
      await shot('console-replay-asciinema', p);
    } finally {
      await ctx.close();
    }
  });
});

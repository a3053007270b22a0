import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Dialog, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { launchChromium, mountTerminal, terminalSize, typeLine, waitForResize, waitForTerminal } from '../helpers/browser.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { docker, TestContainers, uniqueApp } from '../helpers/containers.js';

const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));

interface EmbeddingSite {
  server: Server;
  /** The site's origin as the broker allows it. */
  allowed: string;
  /** The same site under another name: an origin the broker does not allow. */
  refused: string;
}

/**
 * Another web site (another origin, on loopback so that Chromium's local network checks stay
 * out of the way) with an "Enter container" button that adds an <entry-terminal>, using the
 * built entry-terminal.js the way an existing console would.
 */
async function startEmbeddingSite(params: () => { broker: string; token: string; app: string }): Promise<EmbeddingSite> {
  const script = readFileSync(`${CONSOLE_DIR}entry-terminal.js`);
  const server = createServer((req, res) => {
    if (req.url === '/entry-terminal.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
      return;
    }
    const { broker, token, app } = params();
    res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><title>Shop console</title>
      <button id="enter">Enter container</button>
      <div id="slot"></div>
      <script type="module">
        import '/entry-terminal.js';
        document.getElementById('enter').addEventListener('click', () => {
          const t = document.createElement('entry-terminal');
          t.id = 't';
          t.setAttribute('broker', ${JSON.stringify(broker)});
          t.setAttribute('app', ${JSON.stringify(app)});
          t.setAttribute('proc', 'web');
          t.setAttribute('instance', '1');
          t.token = ${JSON.stringify(token)};
          t.addEventListener('entry-close', (e) => { window.closeInfo = e.detail; });
          document.getElementById('slot').append(t);
        });
      </script>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, allowed: `http://127.0.0.1:${port}`, refused: `http://localhost:${port}` };
}

const terminalOf = (key: string) => `.panel[data-key="${key}"] entry-terminal`;

/**
 * The web console and the embeddable terminal in a real browser (Debian's Chromium through
 * playwright-core) against a real broker and real containers.
 */
describe('web console in Chromium', () => {
  const containers = new TestContainers();
  const app = uniqueApp('web');
  const otherApp = uniqueApp('web');
  const ids: Record<string, string> = {};
  let b: TestBroker;
  let token: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let site: EmbeddingSite;

  const shot = (name: string, p: Page = page) => p.screenshot({ path: `${ARTIFACTS}${name}.png` });

  beforeAll(async () => {
    for (const f of ['index.html', 'entry-terminal.js']) {
      if (!existsSync(CONSOLE_DIR + f)) throw new Error(`dist/console/${f} is missing: run npm run build:web first`);
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    site = await startEmbeddingSite(() => ({ broker: b.url, token, app }));
    b = await startTestBroker({ 'allowed-origin': [site.allowed] });
    ids['web/1'] = await containers.entry(app, 'web', 1);
    ids['web/2'] = await containers.entry(app, 'web', 2);
    ids['worker/1'] = await containers.entry(app, 'worker', 1);
    await containers.entry(otherApp, 'web', 1);
    token = await b.mint({ apps: [app] });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
    page = await context.newPage();
  });
  afterAll(async () => {
    await browser?.close();
    site?.server.close();
    await b?.stop();
    await containers.removeAll();
  });

  it('refuses a bad token with the broker\'s reason', async () => {
    await page.goto(`${b.url}/`);
    await page.locator('#token-input').fill('not-a-token');
    await page.locator('#token-input').press('Enter');
    await page.locator('#sign-in-error', { hasText: 'invalid access token' }).waitFor();
    expect(await page.evaluate("sessionStorage.getItem('entry.token')")).toBeNull();
  });

  it('signs in with a pasted token and lists only the containers the token may enter', async () => {
    await page.locator('#token-input').fill(token);
    await shot('console-sign-in');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator(`#container-rows tr[data-key="${app}/worker/1"]`).waitFor();
    const keys = await Promise.all((await page.locator('#container-rows tr').all()).map((r) => r.getAttribute('data-key')));
    expect(keys).toEqual([`${app}/web/1`, `${app}/web/2`, `${app}/worker/1`]);
    expect(await page.locator(`#container-rows tr[data-key^="${otherApp}/"]`).count()).toBe(0);
    // The token lives in the tab's session storage, never in a cookie.
    expect(await page.evaluate("sessionStorage.getItem('entry.token')")).toBe(token);
    expect(await context.cookies()).toEqual([]);
    await shot('console-list');
  });

  it('keeps the saved token when the broker cannot be asked about it, and signs in with it on the next load', async () => {
    // A proxy in front of a restarting broker answers 502 for it: that says nothing of the token.
    await page.route('**/api/whoami', (route) => route.fulfill({ status: 502, contentType: 'text/html', body: '<h1>502 Bad Gateway</h1>' }));
    await page.reload();
    await page.locator('#sign-in-error', { hasText: '502' }).waitFor();
    expect(await page.evaluate("sessionStorage.getItem('entry.token')")).toBe(token);
    await page.unroute('**/api/whoami');
    await page.reload();
    await page.locator(`#container-rows tr[data-key="${app}/worker/1"]`).waitFor();
    expect(await page.locator('#sign-in-view').isHidden()).toBe(true);
  });

  it('filters the list, with "/" to reach the filter from anywhere', async () => {
    await page.locator('#refresh').focus();
    await page.keyboard.press('/');
    await page.waitForFunction("document.activeElement?.id === 'search'");
    await page.keyboard.type('work');
    await page.locator('#container-rows tr').first().filter({ hasText: 'worker' }).waitFor();
    expect(await page.locator('#container-rows tr').count()).toBe(1);
    await page.keyboard.press('Escape');
    await page.locator('#container-rows tr').nth(2).waitFor();
    expect(await page.locator('#container-rows tr').count()).toBe(3);
  });

  it('opens a terminal with Enter and runs a command in it', async () => {
    await page.getByRole('button', { name: `Enter ${app}/web/1` }).focus();
    await page.keyboard.press('Enter');
    await page.locator('.tab[data-state="open"]').waitFor();
    // The new terminal has the keyboard: no click needed.
    await page.keyboard.type('echo $((6*7))');
    await page.keyboard.press('Enter');
    await waitForTerminal(page, terminalOf(`${app}/web/1`), /^42$/m);
    expect(await page.title()).toBe(`${app}/web/1 · Entry`);
    await shot('console-one-terminal');
  });

  it('resizes the remote terminal with the window (stty size)', async () => {
    const sel = terminalOf(`${app}/web/1`);
    // The shell polls its own size: the resize reaches Docker on its own path, not with the keys.
    const sttyUntil = (rows: number, cols: number, tag: string) =>
      typeLine(page, sel, `for i in $(seq 50); do s=$(stty size); [ "$s" = "${rows} ${cols}" ] && break; sleep 0.1; done; echo "${tag}=$s"`);
    const before = await terminalSize(page, sel);
    expect(before.cols).toBeGreaterThan(60);
    await sttyUntil(before.rows, before.cols, 'size1');
    await waitForTerminal(page, sel, new RegExp(`^size1=${before.rows} ${before.cols}$`, 'm'));

    await page.setViewportSize({ width: 1100, height: 620 });
    const after = await waitForResize(page, sel, before);
    expect(after.cols).toBeLessThan(before.cols);
    expect(after.rows).toBeLessThan(before.rows);
    await sttyUntil(after.rows, after.cols, 'size2');
    await waitForTerminal(page, sel, new RegExp(`^size2=${after.rows} ${after.cols}$`, 'm'));
    await page.setViewportSize({ width: 1366, height: 768 });
  });

  it('reconnects with Enter after the shell exits', async () => {
    const sel = terminalOf(`${app}/web/1`);
    await typeLine(page, sel, 'exit 3');
    await waitForTerminal(page, sel, /exited with code 3\s*\n\[press Enter to reconnect\]/);
    await page.locator('.tab[data-state="closed"]').waitFor();
    // The tab says its state in words too, not by its colour alone.
    await page.getByRole('tab', { name: `${app}/web/1 (ended)`, exact: true }).waitFor();
    await page.keyboard.press('Enter');
    await page.locator('.tab[data-state="open"]').waitFor();
    await page.getByRole('tab', { name: `${app}/web/1 (open)`, exact: true }).waitFor();
    await typeLine(page, sel, 'echo again-$((2+3))');
    // The new session follows the old one's last words, which stay in the scrollback.
    const text = await waitForTerminal(page, sel, /^again-5$/m);
    expect(text).toMatch(/exited with code 3/);
  });

  it('closes a tab, ending its session, and opens the same container again', async () => {
    expect(b.broker.sessionCount).toBe(1);
    await page.getByRole('button', { name: `Close ${app}/web/1` }).click();
    await page.locator(terminalOf(`${app}/web/1`)).waitFor({ state: 'detached' });
    await vi.waitFor(() => expect(b.broker.sessionCount).toBe(0), { timeout: 10_000 });
    await page.locator('#no-terminals').waitFor();
    // The keyboard goes back to the filter, not to nowhere.
    await page.waitForFunction("document.activeElement?.id === 'search'");

    await page.getByRole('button', { name: `Enter ${app}/web/1` }).click();
    await typeLine(page, terminalOf(`${app}/web/1`), 'echo reopened-$((1+1))');
    await waitForTerminal(page, terminalOf(`${app}/web/1`), /^reopened-2$/m);
  });

  it('keeps two terminals open at once, each in its own container', async () => {
    await page.getByRole('button', { name: `Enter ${app}/web/2` }).click();
    await page.locator('.tab').nth(1).waitFor();
    expect(await page.locator('.tab').count()).toBe(2);
    await page.getByRole('button', { name: 'Side by side' }).click();
    for (const key of ['web/1', 'web/2']) {
      const sel = terminalOf(`${app}/${key}`);
      // Output: colours, and UTF-8 written by the shell byte by byte.
      await typeLine(page, sel, `printf '\\033[32mI am %s in ${key} \\303\\274 \\342\\234\\223\\033[0m\\n' "$(hostname)"`);
      await waitForTerminal(page, sel, new RegExp(`^I am ${ids[key]!.slice(0, 12)} in ${key} ü ✓$`, 'm'));
    }
    // Input: non-ASCII text as an input method or a paste delivers it, checked byte by byte
    // (od reads the terminal itself: the image's bash has no UTF-8 locale for readline).
    const sel2 = terminalOf(`${app}/web/2`);
    // "od-ready" comes after readline has given the terminal back to canonical mode with echo.
    await typeLine(page, sel2, 'echo od-ready; od -An -tx1 | tr -d " \\n"; echo');
    await waitForTerminal(page, sel2, /^od-ready$/m);
    await page.keyboard.insertText('grün ✓ 日本');
    await waitForTerminal(page, sel2, /^grün ✓ 日本$/m);
    await page.keyboard.press('Enter');
    await page.keyboard.press('Control+D');
    await waitForTerminal(page, sel2, /^6772c3bc6e20e29c9320e697a5e69cac0a$/m);
    expect(b.broker.sessionCount).toBe(2);
    await shot('console-two-terminals');

    // Alt+Shift+← moves to the other tab, even from inside a terminal.
    await page.keyboard.press('Alt+Shift+ArrowLeft');
    await page.locator('.tab-item.active', { hasText: `${app}/web/1` }).waitFor();
    await page.getByRole('button', { name: 'Side by side' }).click();
  });

  it('shows the CLOSE reason when the container is stopped', async () => {
    const sel = terminalOf(`${app}/worker/1`);
    await page.getByRole('button', { name: `Enter ${app}/worker/1` }).click();
    await typeLine(page, sel, 'echo worker-ready');
    await waitForTerminal(page, sel, /^worker-ready$/m);
    await docker.getContainer(ids['worker/1']!).stop({ t: 1 });
    await waitForTerminal(page, sel, /container stopped[^\n]*\n\[press Enter to reconnect\]/);
    await page.locator('.tab-item.active .tab[data-state="closed"]').waitFor();
    await shot('console-container-stopped');
  });

  it('keeps a focused tab on Backspace, and gives the keyboard to the next terminal when Alt+Shift+W closes one', async () => {
    const worker = page.locator('.tab-item', { hasText: `${app}/worker/1` }).locator('.tab');
    await worker.focus();
    await page.keyboard.press('Backspace');
    expect(await worker.count()).toBe(1);
    await page.locator(terminalOf(`${app}/worker/1`)).click();
    await page.keyboard.press('Alt+Shift+W');
    await page.locator(terminalOf(`${app}/worker/1`)).waitFor({ state: 'detached' });
    // Typing goes on in a terminal, not on a tab that Backspace or Delete would close.
    await page.waitForFunction(() => document.activeElement?.classList.contains('xterm-helper-textarea') === true);
    expect(b.broker.sessionCount).toBe(2);
  });

  it('embeds <entry-terminal> from the broker\'s entry-terminal.js on a page of the broker\'s origin, with tickets', async () => {
    const before = b.broker.sessionCount;
    const embed = await context.newPage();
    // Any page of the broker's origin will do as the host; the script and the ticket API are
    // the broker's own. (setContent would not do: document.open() pages never upgrade elements.)
    await embed.goto(`${b.url}/healthz`);
    await mountTerminal(embed, app, token, { instance: 2, height: 320, heading: 'Shop admin' });
    await typeLine(embed, '#t', 'echo $((6*7))');
    await waitForTerminal(embed, '#t', /^42$/m);
    await shot('embed-same-origin', embed);

    // A refused ticket: the broker's reason shows in the terminal, its code in the event. A new
    // provider is used from the next connection on: here a new session, asked for at once.
    await embed.evaluate(`(() => {
      const t = document.getElementById('t');
      t.addEventListener('entry-close', (e) => { window.closeInfo = e.detail; });
      t.ticketProvider = async () => 'forged';
      t.reconnect();
    })()`);
    await waitForTerminal(embed, '#t', /entry: invalid access token: unknown, expired or already used ticket\s*\n\[press Enter to reconnect\]/);
    expect(await embed.evaluate('window.closeInfo.code')).toBe('ENTRY_BAD_TOKEN');
    // The reason alone, as a tab's title shows it: not the terminal's line.
    expect(await embed.evaluate('window.closeInfo.message')).toBe('invalid access token: unknown, expired or already used ticket');
    await embed.close();
    // Its shell's end is the broker's to finish: the tests after count the page's sessions.
    await expect.poll(() => b.broker.sessionCount, { timeout: 10_000 }).toBe(before);
  });

  it('embeds <entry-terminal> on another site allowed by the broker, with the token as a subprotocol', async () => {
    const before = b.broker.sessionCount;
    const embed = await context.newPage();
    await embed.goto(`${site.allowed}/embed.html`);
    await embed.getByRole('button', { name: 'Enter container' }).click();
    await typeLine(embed, '#t', 'echo "$((6*7)) from $TERM"');
    await waitForTerminal(embed, '#t', /^42 from xterm-256color$/m);
    await shot('embed-other-origin', embed);
    await embed.close();
    await expect.poll(() => b.broker.sessionCount, { timeout: 10_000 }).toBe(before);
  });

  it('shows a failure in the terminal when the broker refuses the page\'s origin', async () => {
    const embed = await context.newPage();
    await embed.goto(`${site.refused}/embed.html`);
    await embed.getByRole('button', { name: 'Enter container' }).click();
    await waitForTerminal(embed, '#t', /could not connect to the broker/);
    // Browsers do not tell why an upgrade failed; the element reports what it knows.
    expect(await embed.evaluate('window.closeInfo.code')).toBe('ENTRY_UNREACHABLE');
    await embed.close();
  });

  it('asks for a new token when the broker refuses the one in use, and keeps the open terminals running', async () => {
    const running = b.broker.sessionCount;
    expect(running).toBeGreaterThan(0);
    const terminals = await page.locator('entry-terminal').count();
    // The token has expired by the next listing: the broker refuses it (401). (Its sessions go
    // on, as an ssh session outlives its credential; a revocation would end them.)
    const expired = await b.mint({ apps: [app] }, { expiresIn: Math.floor(Date.now() / 1000) - 120 });
    await page.route('**/api/containers', (route) => route.continue({ headers: { ...route.request().headers(), authorization: `Bearer ${expired}` } }));
    await page.locator('#refresh').click();
    await page.locator('#sign-in-error', { hasText: /expired.*keep running/ }).waitFor();
    await page.unroute('**/api/containers');
    expect(await page.evaluate("sessionStorage.getItem('entry.token')")).toBeNull();
    // Nothing was closed: the sessions go on, on the broker and in the page.
    expect(await page.locator('entry-terminal').count()).toBe(terminals);
    expect(b.broker.sessionCount).toBe(running);
    // Signed in again, the terminal is where it was, its shell alive.
    token = await b.mint({ apps: [app] });
    await page.locator('#token-input').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator(`#container-rows tr[data-key="${app}/web/1"]`).waitFor();
    const sel = terminalOf(`${app}/web/1`);
    await page.locator('.tab-item', { hasText: `${app}/web/1` }).locator('.tab').click();
    await typeLine(page, sel, 'echo still-$((40+2))');
    await waitForTerminal(page, sel, /^still-42$/m);
  });

  it('asks before the page is left while a session is open in it, and keeps it when told to stay', async () => {
    const running = b.broker.sessionCount;
    expect(running).toBeGreaterThan(0);
    const asked: string[] = [];
    const stay = (d: Dialog) => {
      asked.push(d.type());
      void d.dismiss();
    };
    page.on('dialog', stay);
    try {
      // Returns once the question is answered: the reload waits on it.
      await page.evaluate('location.reload()');
      expect(asked).toEqual(['beforeunload']);
    } finally {
      page.off('dialog', stay);
    }
    const sel = terminalOf(`${app}/web/1`);
    await typeLine(page, sel, 'echo stayed-$((40+2))');
    await waitForTerminal(page, sel, /^stayed-42$/m);
    expect(b.broker.sessionCount).toBe(running);
  });

  it('signs out: the token is forgotten and every terminal closed', async () => {
    expect(b.broker.sessionCount).toBeGreaterThan(0);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#sign-in-view').waitFor();
    expect(await page.evaluate("sessionStorage.getItem('entry.token')")).toBeNull();
    expect(await page.locator('entry-terminal').count()).toBe(0);
    await vi.waitFor(() => expect(b.broker.sessionCount).toBe(0), { timeout: 10_000 });
    // A reload stays signed out, and with no session open it is not asked about.
    const asked: string[] = [];
    const record = (d: Dialog) => {
      asked.push(d.type());
      void d.accept();
    };
    page.on('dialog', record);
    await page.reload();
    page.off('dialog', record);
    expect(asked).toEqual([]);
    await page.locator('#token-input').waitFor();
  });
});

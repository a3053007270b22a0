import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, mountTerminal, terminalText, typeLine, waitForTerminal } from '../helpers/browser.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';

const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));
const NOT_SENT = /\[paste not sent: the session has ended; press Enter to reconnect\]/;
const NOT_SENT_RECONNECTING = /\[paste not sent: the session had ended; reconnecting, paste again at the new prompt\]/;

/**
 * Pasting into a browser terminal whose session has ended: a line in the paste opened a new
 * session (as Enter there does) and the text went nowhere, unsaid; without a line nothing at all
 * happened. Now the terminal says the paste was not sent, and a line still opens a new session as
 * Enter does, where the pasted text never runs: the user has not seen that session open.
 * Pasted with the browser's own keys (Ctrl+Shift+V) and with right click, from the clipboard.
 */
describe('the browser terminal, pasted into after its session ended', () => {
  const containers = new TestContainers();
  const app = uniqueApp('wpend');
  let b: TestBroker;
  let browser: Browser;
  let page: Page;

  const states = () => page.evaluate(() => (window as unknown as { states: string[] }).states.join(' '));
  const copy = (text: string) => page.evaluate((t) => navigator.clipboard.writeText(t), text);
  /** Until `pattern` has shown `n` times in the terminal. */
  const shown = (pattern: RegExp, n: number) => waitForTerminal(page, '#t', new RegExp(`(?:${pattern.source}[\\s\\S]*){${n}}`));
  const exitShell = async (code: number) => {
    await typeLine(page, '#t', `exit ${code}`);
    await waitForTerminal(page, '#t', new RegExp(`exited with code ${code}\\s*\\n\\[press Enter to reconnect\\]\\s*$`));
  };

  beforeAll(async () => {
    if (!existsSync(`${CONSOLE_DIR}entry-terminal.js`)) throw new Error('dist/console/entry-terminal.js is missing: run npm run build:web first');
    b = await startTestBroker();
    await containers.entry(app, 'web', 1);
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    page = await context.newPage();
    await page.goto(`${b.url}/healthz`);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: b.url });
    await mountTerminal(page, app, await b.mint({ apps: [app] }), { recordStates: true });
    await waitForTerminal(page, '#t', /[$#] $/m);
  });
  afterAll(async () => {
    await browser?.close();
    await b?.stop();
    await containers.removeAll();
  });

  it('says a paste without a line was not sent, and opens nothing', async () => {
    await exitShell(3);
    await copy('echo lone-$((2*3))');
    await page.locator('#t .xterm-helper-textarea').focus();
    await page.keyboard.press('Control+Shift+V');
    await waitForTerminal(page, '#t', NOT_SENT);
    // Enter still opens a new session; the paste before it did not (one reconnect in all).
    expect(await states()).toBe('connecting open closed');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => (window as unknown as { states: string[] }).states.length === 5);
    await typeLine(page, '#t', 'echo marker-$((1+1))');
    const text = await waitForTerminal(page, '#t', /^marker-2$/m);
    expect(text).not.toMatch(/lone-/);
    expect(await states()).toBe('connecting open closed connecting open');
  });

  for (const [i, how] of (['Ctrl+Shift+V', 'right click'] as const).entries()) {
    it(`opens a new session for a paste with a line in it (${how}), as Enter does, and never runs the paste there`, async () => {
      await exitShell(4);
      const before = await states();
      await copy(`echo pasted-${how === 'right click' ? 'r' : 'k'}-$((6*7))\necho second-line\n`);
      if (how === 'right click') {
        await page.locator('#t .xterm-screen').click({ button: 'right' });
      } else {
        await page.locator('#t .xterm-helper-textarea').focus();
        await page.keyboard.press('Control+Shift+V');
      }
      await shown(NOT_SENT_RECONNECTING, i + 1);
      await page.waitForFunction((n) => (window as unknown as { states: string[] }).states.join(' ') === n, `${before} connecting open`);
      // Sent, the paste would have gone before this line (input keeps its order).
      await typeLine(page, '#t', `echo after-${how === 'right click' ? 'r' : 'k'}-$((1+2))`);
      await waitForTerminal(page, '#t', new RegExp(`^after-${how === 'right click' ? 'r' : 'k'}-3$`, 'm'));
      const text = await terminalText(page, '#t');
      expect(text).not.toMatch(/pasted-.-42|second-line/);
    });
  }

  it('does not send the same paste made again while the session the first opened connects', async () => {
    await exitShell(5);
    const before = await states();
    // Both in one task, as a key pressed twice: the second comes while the new session connects.
    await page.evaluate(() => {
      const t = document.querySelector('#t') as unknown as { handle: { state: string; terminal: { paste(text: string): void } } };
      t.handle.terminal.paste('echo twice-$((3*3))\n');
      if (t.handle.state !== 'connecting') throw new Error(`not connecting after the first paste: ${t.handle.state}`);
      t.handle.terminal.paste('echo twice-$((3*3))\n');
    });
    await waitForTerminal(page, '#t', /\[paste not sent: the new session is still opening; paste again at its prompt\]/);
    await page.waitForFunction((n) => (window as unknown as { states: string[] }).states.join(' ') === n, `${before} connecting open`);
    await typeLine(page, '#t', 'echo after-twice-$((1+3))');
    await waitForTerminal(page, '#t', /^after-twice-4$/m);
    expect(await terminalText(page, '#t')).not.toMatch(/twice-9/);
  });

  it('pastes as usual into a session that is open', async () => {
    await copy('echo live-$((5*5))');
    await page.locator('#t .xterm-helper-textarea').focus();
    await page.keyboard.press('Control+Shift+V');
    await page.keyboard.press('Enter');
    await waitForTerminal(page, '#t', /^live-25$/m);
  });
});

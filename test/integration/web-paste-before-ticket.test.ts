import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, waitForTerminal } from '../helpers/browser.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';

const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));
/** Past what the broker holds of a client's input before it stops reading it (2 MiB). */
const PASTE_LINES = 60_000;
const LINE_TAIL = 'x'.repeat(90);
/** Past what the terminal kept of input typed while connecting (64 KiB). */
const EARLY_LINES = 3_000;

/**
 * A large paste the moment the browser terminal opens, before the broker's RESUMABLE: sent all
 * at once, it had the broker hold more than 2 MiB of it and stop reading the connection, so the
 * output acknowledgements stayed unread, the output stopped at the resume buffer, and the
 * process, blocked writing, read no more input: the session hung. Within the input window from
 * the start, the paste goes through.
 */
describe('the browser terminal, pasted into before the broker says it resumes', () => {
  const containers = new TestContainers();
  const app = uniqueApp('wpaste');
  let b: TestBroker;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    if (!existsSync(`${CONSOLE_DIR}entry-terminal.js`)) throw new Error('dist/console/entry-terminal.js is missing: run npm run build:web first');
    b = await startTestBroker();
    await containers.entry(app, 'web', 1);
    const token = await b.mint({ apps: [app] });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    await page.goto(`${b.url}/healthz`);
    await page.addScriptTag({
      type: 'module',
      content: `
        import '/entry-terminal.js';
        const lines = Array.from({ length: ${PASTE_LINES} }, (_, i) => 'line ' + i + ' ${LINE_TAIL}');
        window.pasted = 0;
        const t = document.createElement('entry-terminal');
        t.id = 't';
        t.setAttribute('app', ${JSON.stringify(app)});
        t.setAttribute('proc', 'web');
        t.setAttribute('instance', '1');
        t.style.height = '600px';
        t.token = ${JSON.stringify(token)};
        // At once when the socket opens: START has gone, RESUMABLE cannot have been read yet.
        t.addEventListener('entry-state', (e) => {
          if (e.detail.state !== 'open' || window.pasted > 0) return;
          // The shell reads nothing for 2 s: sent at once, the paste piles up in the broker.
          const text = 'sleep 2; stty -echo; cat\\n' + lines.join('\\n') + '\\nend-of-paste\\n';
          window.pasted = text.length;
          t.handle.terminal.paste(text);
        });
        document.body.append(t);
        // A second terminal, pasted into while it connects (before START): kept whole.
        const early = Array.from({ length: ${EARLY_LINES} }, (_, i) => 'early ' + i + ' ${LINE_TAIL}');
        window.earlyPasted = 0;
        const u = document.createElement('entry-terminal');
        u.id = 'u';
        u.setAttribute('app', ${JSON.stringify(app)});
        u.setAttribute('proc', 'web');
        u.setAttribute('instance', '1');
        u.style.height = '300px';
        u.token = ${JSON.stringify(token)};
        u.addEventListener('entry-state', (e) => {
          if (e.detail.state !== 'connecting' || window.earlyPasted > 0) return;
          const text = 'stty -echo; cat\\n' + early.join('\\n') + '\\nend-of-early-paste\\n';
          // Once the element has its handle (the state is told as it is made), still connecting:
          // the socket cannot open before this task is done. As typed: xterm's paste wants the
          // terminal on screen, which comes a frame later.
          queueMicrotask(() => {
            if (u.state !== 'connecting') throw new Error('no longer connecting: ' + u.state);
            u.handle.terminal.input(text);
            window.earlyPasted = text.length;
          });
        });
        document.body.append(u);`,
    });
  });
  afterAll(async () => {
    await browser?.close();
    await b?.stop();
    await containers.removeAll();
  });

  it('passes the whole paste to the process, its last line included', async () => {
    await page.waitForFunction('window.pasted > 0');
    expect(await page.evaluate('window.pasted')).toBeGreaterThan(4 * 1024 * 1024);
    // cat prints each line back (the terminal echoes none of them), the marker last.
    const text = await waitForTerminal(page, '#t', /^end-of-paste$/m, 45_000);
    expect(text).toMatch(new RegExp(`^line ${PASTE_LINES - 1} ${LINE_TAIL}$`, 'm'));
  }, 90_000);

  it('keeps input given while the terminal connects, however large, and sends it once the session starts', async () => {
    await page.waitForFunction('window.earlyPasted > 0');
    expect(await page.evaluate('window.earlyPasted')).toBeGreaterThan(64 * 1024);
    const text = await waitForTerminal(page, '#u', /^end-of-early-paste$/m, 45_000);
    expect(text).toMatch(new RegExp(`^early ${EARLY_LINES - 1} ${LINE_TAIL}$`, 'm'));
  }, 90_000);
});

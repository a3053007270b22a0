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
        /** A terminal on the demo container, on the page; onState hears its states. */
        const terminal = (id, height, onState) => {
          const t = document.createElement('entry-terminal');
          t.id = id;
          t.setAttribute('app', ${JSON.stringify(app)});
          t.setAttribute('proc', 'web');
          t.setAttribute('instance', '1');
          t.style.height = height;
          t.token = ${JSON.stringify(token)};
          t.addEventListener('entry-state', (e) => onState(t, e.detail.state));
          document.body.append(t);
        };
        const text = (name, count, lead) => lead + 'stty -echo; cat\\n' + Array.from({ length: count }, (_, i) => name + ' ' + i + ' ${LINE_TAIL}').join('\\n') + '\\nend-of-' + name + '\\n';
        window.pasted = 0;
        // At once when the socket opens: START has gone, RESUMABLE cannot have been read yet.
        terminal('t', '600px', (t, state) => {
          if (state !== 'open' || window.pasted > 0) return;
          // The shell reads nothing for 2 s: sent at once, the paste piles up in the broker.
          const paste = text('line', ${PASTE_LINES}, 'sleep 2; ');
          window.pasted = paste.length;
          t.handle.terminal.paste(paste);
        });
        // A second terminal, given input while it connects (before START): kept whole.
        window.earlyPasted = 0;
        terminal('u', '300px', (u, state) => {
          if (state !== 'connecting' || window.earlyPasted > 0) return;
          const input = text('early', ${EARLY_LINES}, '');
          // Once the element has its handle (the state is told as it is made), still connecting:
          // the socket cannot open before this task is done. As typed: xterm's paste wants the
          // terminal on screen, which comes a frame later.
          queueMicrotask(() => {
            if (u.state !== 'connecting') throw new Error('no longer connecting: ' + u.state);
            u.handle.terminal.input(input);
            window.earlyPasted = input.length;
          });
        });`,
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
    const text = await waitForTerminal(page, '#t', /^end-of-line$/m, 45_000);
    expect(text).toMatch(new RegExp(`^line ${PASTE_LINES - 1} ${LINE_TAIL}$`, 'm'));
  }, 90_000);

  it('keeps input given while the terminal connects, however large, and sends it once the session starts', async () => {
    await page.waitForFunction('window.earlyPasted > 0');
    expect(await page.evaluate('window.earlyPasted')).toBeGreaterThan(64 * 1024);
    const text = await waitForTerminal(page, '#u', /^end-of-early$/m, 45_000);
    expect(text).toMatch(new RegExp(`^early ${EARLY_LINES - 1} ${LINE_TAIL}$`, 'm'));
  }, 90_000);
});

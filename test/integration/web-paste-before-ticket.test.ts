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
        document.body.append(t);`,
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
});

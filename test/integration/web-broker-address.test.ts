import { type AddressInfo, createServer, type Socket } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, terminalText, typeLine, waitForTerminal } from '../helpers/browser.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';

/** <entry-terminal broker="…"> given a broker address as people write them, or one a browser will not use. */
describe('the browser terminal and its broker address', () => {
  const containers = new TestContainers();
  const app = uniqueApp('addr');
  let b: TestBroker;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    b = await startTestBroker();
    await containers.entry(app, 'web', 1);
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage();
    await page.goto(`${b.url}/healthz`);
  });
  afterAll(async () => {
    await browser?.close();
    await b?.stop();
    await containers.removeAll();
  });

  /** Mounts a terminal on `broker` with a token, recording its end as `window.ended[id]`. */
  async function mount(id: string, broker: string): Promise<void> {
    const token = await b.mint({ apps: [app] });
    await page.addScriptTag({
      type: 'module',
      content: `
        import '/entry-terminal.js';
        window.ended ??= {};
        const t = document.createElement('entry-terminal');
        t.id = ${JSON.stringify(id)};
        t.setAttribute('app', ${JSON.stringify(app)});
        t.setAttribute('proc', 'web');
        t.setAttribute('instance', '1');
        t.setAttribute('broker', ${JSON.stringify(broker)});
        t.style.height = '300px';
        t.addEventListener('entry-close', (e) => (window.ended[${JSON.stringify(id)}] = e.detail));
        t.token = ${JSON.stringify(token)};
        document.body.append(t);`,
    });
  }

  it('takes host:port without a scheme as the page would', async () => {
    await mount('bare', new URL(b.url).host);
    await typeLine(page, '#bare', 'echo bare-$((6*7))');
    await waitForTerminal(page, '#bare', /^bare-42$/m);
  });

  it('gives up a broker that takes the connection and never answers, saying so, after 15 s', async () => {
    // Takes the TCP connection and the upgrade request, and answers nothing.
    const held = new Set<Socket>();
    const silent = createServer((socket) => {
      held.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const started = Date.now();
      await mount('silent', `http://127.0.0.1:${(silent.address() as AddressInfo).port}`);
      const ended = await (await page.waitForFunction(() => (window as unknown as { ended: Record<string, unknown> }).ended['silent'], undefined, { timeout: 30_000 })).jsonValue();
      expect(ended).toMatchObject({ code: 'ENTRY_UNREACHABLE', message: 'no answer from the broker within 15 s' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(14_000);
    } finally {
      for (const socket of held) socket.destroy();
      silent.close();
    }
  }, 40_000);

  it('says why it cannot connect to an address no browser socket takes, and ends', async () => {
    await mount('ftp', 'ftp://127.0.0.1:1');
    const ended = await (await page.waitForFunction(() => (window as unknown as { ended: Record<string, unknown> }).ended['ftp'], undefined, { timeout: 10_000 })).jsonValue();
    expect(ended).toMatchObject({ code: 'ENTRY_UNREACHABLE' });
    expect(await terminalText(page, '#ftp')).toMatch(/cannot connect to the broker "ftp:\/\/127\.0\.0\.1:1": not a broker address/);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, mountTerminal, typeLine, waitForTerminal } from '../helpers/browser.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * The network comes back slowly: for a while after the link breaks, new connections are
 * accepted and never answered (a host behind a network that drops packets). The browser's first
 * resume try (its ticket request, its socket) hangs in that window; it must give up on it and
 * try again, and get the session back once the network answers, within the grace period.
 */
describe('<entry-terminal> resuming through a network that does not answer at first', () => {
  const containers = new TestContainers();
  const app = uniqueApp('ws');
  let b: TestBroker;
  let proxy: TcpProxy;

  beforeAll(async () => {
    b = await startTestBroker({ 'resume-grace': 60_000 });
    proxy = new TcpProxy(b.url);
    await proxy.start();
    await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await proxy?.stop();
    await b?.stop();
    await containers.removeAll();
  });

  it('gives up a resume try that hangs, and resumes the same shell once the network answers', async () => {
    const token = await b.mint({ apps: [app] }, { user: 'stalled' });
    const browser = await launchChromium();
    try {
      const page = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage();
      await page.goto(`${proxy.url}/healthz`);
      await mountTerminal(page, app, token);
      await typeLine(page, '#t', 'KEPT=still-$((6*7)); echo ready');
      await waitForTerminal(page, '#t', /^ready$/m);
      proxy.stall(3_000);
      proxy.cut();
      await page.locator('#t .entry-terminal-overlay').waitFor({ state: 'visible', timeout: 5_000 });
      // The try made in the stall hangs until it is given up (15 s); the next one gets through.
      await page.locator('#t .entry-terminal-overlay').waitFor({ state: 'detached', timeout: 40_000 });
      await typeLine(page, '#t', 'echo "kept:$KEPT"');
      const text = await waitForTerminal(page, '#t', /^kept:still-42$/m);
      expect(text).toMatch(/^kept:still-42$/m);
    } finally {
      await browser.close();
    }
  }, 90_000);
});

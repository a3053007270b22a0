import type { Browser } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { launchChromium } from './browser.js';
import { startTestBroker, type TestBroker } from './broker.js';
import { TestContainers } from './containers.js';
import { TcpProxy } from './tcp-proxy.js';

export interface BrowserBehindProxy {
  readonly b: TestBroker;
  /** In front of the broker: the page, its API calls and its sockets go through it, one origin, and links a test can cut. */
  readonly proxy: TcpProxy;
  readonly browser: Browser;
}

/**
 * For the describe block it is called in: a broker with `settings`, a proxy in front of it,
 * `app/web/1` to enter and Chromium, all started before its tests and stopped after.
 */
export function useBrowserBehindProxy(app: string, settings: Record<string, unknown> = {}): BrowserBehindProxy {
  const containers = new TestContainers();
  let b: TestBroker | undefined;
  let proxy: TcpProxy | undefined;
  let browser: Browser | undefined;
  beforeAll(async () => {
    b = await startTestBroker(settings);
    proxy = new TcpProxy(b.url);
    await proxy.start();
    await containers.entry(app, 'web', 1);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.stop();
    await b?.stop();
    await containers.removeAll();
  });
  return {
    get b() {
      return b!;
    },
    get proxy() {
      return proxy!;
    },
    get browser() {
      return browser!;
    },
  };
}

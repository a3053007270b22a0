import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, typeLine, waitForTerminal } from '../helpers/browser.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';

/** The <entry-terminal> element's life on a page: what setting its properties and removing it does. */
describe('<entry-terminal> on a page', () => {
  const containers = new TestContainers();
  const app = uniqueApp('el');
  let b: TestBroker;
  let browser: Browser;
  let token = '';

  beforeAll(async () => {
    // Pings every second: each terminal's silence watch runs a timer of its own.
    b = await startTestBroker({ 'ping-interval': 1_000 });
    await containers.entry(app, 'web', 1);
    token = await b.mint({ apps: [app] }, { user: 'element' });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await b?.stop();
    await containers.removeAll();
  });

  /** A page of the broker's origin whose timers are counted: intervals set and not cleared. */
  async function countedPage(): Promise<Page> {
    const page = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage();
    await page.addInitScript(() => {
      const live = new Set<unknown>();
      const w = window as unknown as { liveIntervals: Set<unknown>; setInterval: typeof setInterval; clearInterval: typeof clearInterval };
      w.liveIntervals = live;
      const set = w.setInterval.bind(window);
      const clear = w.clearInterval.bind(window);
      w.setInterval = ((fn: () => void, ms?: number) => {
        const id = set(fn, ms);
        live.add(id);
        return id;
      }) as typeof setInterval;
      w.clearInterval = ((id?: Parameters<typeof clearInterval>[0]) => {
        live.delete(id);
        clear(id);
      }) as typeof clearInterval;
    });
    await page.goto(`${b.url}/healthz`);
    return page;
  }

  async function mount(page: Page, id: string): Promise<void> {
    await page.addScriptTag({
      type: 'module',
      content: `
        import '/entry-terminal.js';
        const t = document.createElement('entry-terminal');
        t.id = ${JSON.stringify(id)};
        t.setAttribute('app', ${JSON.stringify(app)});
        t.setAttribute('proc', 'web');
        t.setAttribute('instance', '1');
        t.style.height = '200px';
        t.states = [];
        t.addEventListener('entry-state', (e) => t.states.push(e.detail.state));
        t.token = ${JSON.stringify(token)};
        document.body.append(t);`,
    });
  }

  it('keeps its session when the same token is set again', async () => {
    const page = await countedPage();
    await mount(page, 't1');
    await typeLine(page, '#t1', 'MINE=same-$((6*7)); echo set');
    await waitForTerminal(page, '#t1', /^set$/m);
    await page.evaluate(`{ const t = document.querySelector('#t1'); t.token = t.token; }`);
    await typeLine(page, '#t1', 'echo "still:$MINE"');
    await waitForTerminal(page, '#t1', /^still:same-42$/m);
    expect(await page.evaluate(`document.querySelector('#t1').states`)).toEqual(['connecting', 'open']);
  });

  it('leaves no timer running once removed from the page', async () => {
    const page = await countedPage();
    const before = (await page.evaluate('window.liveIntervals.size')) as number;
    for (const id of ['a', 'b', 'c']) await mount(page, id);
    for (const id of ['a', 'b', 'c']) {
      await typeLine(page, `#${id}`, `echo up-${id}`);
      await waitForTerminal(page, `#${id}`, new RegExp(`^up-${id}$`, 'm'));
    }
    expect(await page.evaluate('window.liveIntervals.size')).toBeGreaterThan(before);
    await page.evaluate(`for (const id of ['a', 'b', 'c']) document.getElementById(id).remove()`);
    expect(await page.evaluate('window.liveIntervals.size')).toBe(before);
  });
});

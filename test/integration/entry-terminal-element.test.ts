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

  it('gives an emoji two cells, as the container counts it, and a CJK character two', async () => {
    const page = await countedPage();
    await mount(page, 'w');
    // Byte escapes: what the shell prints is UTF-8 whatever its locale.
    await typeLine(page, '#w', "printf 'wide:A\\360\\237\\230\\200B\\346\\227\\245C\\n'");
    await waitForTerminal(page, '#w', /^wide:A.+B.+C$/m);
    const cells = await page.evaluate(() => {
      const t = (document.querySelector('#w') as unknown as { handle: { terminal: import('@xterm/xterm').Terminal } }).handle.terminal;
      const b = t.buffer.active;
      for (let i = b.length - 1; i >= 0; i--) {
        const line = b.getLine(i);
        if (!line?.translateToString(true).startsWith('wide:A')) continue;
        const out: string[] = [];
        for (let x = 5; x < 13; x++) {
          const cell = line.getCell(x);
          out.push(`${cell?.getChars() ?? '?'}:${cell?.getWidth() ?? '?'}`);
        }
        return out;
      }
      return [];
    });
    // "B" in column 8 as the shell put it there: the emoji's second cell is empty, width 0.
    expect(cells).toEqual(['A:1', '😀:2', ':0', 'B:1', '日:2', ':0', 'C:1', ':1']);
    // The page's own options are as it set them.
    expect(await page.evaluate(`document.querySelector('#w').handle.terminal.options.allowProposedApi`)).toBe(false);
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

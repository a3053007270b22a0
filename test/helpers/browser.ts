import { chromium, type Browser, type Page, type Route } from 'playwright-core';

/** Debian's Chromium, installed by deploy/dev/test.sh; never a downloaded browser. */
export const CHROMIUM = process.env['ENTRY_CHROMIUM'] ?? '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

// What the page functions below see of an <entry-terminal> element; they run in the browser.
interface PageTerminal {
  handle?: {
    state: string;
    terminal: {
      cols: number;
      rows: number;
      buffer: { active: { length: number; getLine(i: number): { translateToString(trim: boolean): string } | undefined } };
    };
  };
}
declare const document: { querySelector(selector: string): unknown };

/** Everything an <entry-terminal> holds (scrollback and screen), one line per row. */
export function terminalText(page: Page, selector: string): Promise<string> {
  return page.evaluate((sel) => {
    const t = (document.querySelector(sel) as PageTerminal | null)?.handle?.terminal;
    if (!t) return '';
    const lines: string[] = [];
    for (let i = 0; i < t.buffer.active.length; i++) lines.push(t.buffer.active.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n').trimEnd();
  }, selector);
}

/** Waits until the terminal's text matches `pattern`; on timeout, fails showing the text. */
export async function waitForTerminal(page: Page, selector: string, pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  try {
    await page.waitForFunction(
      ({ sel, source, flags }) => {
        const t = (document.querySelector(sel) as PageTerminal | null)?.handle?.terminal;
        if (!t) return false;
        const lines: string[] = [];
        for (let i = 0; i < t.buffer.active.length; i++) lines.push(t.buffer.active.getLine(i)?.translateToString(true) ?? '');
        return new RegExp(source, flags).test(lines.join('\n'));
      },
      { sel: selector, source: pattern.source, flags: pattern.flags },
      { timeout: timeoutMs },
    );
  } catch (err) {
    const text = await terminalText(page, selector).catch(() => '(page gone)');
    throw new Error(`terminal ${selector} never showed ${pattern}:\n${text}\n(${(err as Error).message.split('\n')[0]})`);
  }
  return terminalText(page, selector);
}

/** The terminal's size as xterm has it. */
export function terminalSize(page: Page, selector: string): Promise<{ cols: number; rows: number }> {
  return page.evaluate((sel) => {
    const t = (document.querySelector(sel) as PageTerminal | null)?.handle?.terminal;
    return { cols: t?.cols ?? 0, rows: t?.rows ?? 0 };
  }, selector);
}

/** Waits until the terminal's size differs from `from`. */
export async function waitForResize(page: Page, selector: string, from: { cols: number; rows: number }): Promise<{ cols: number; rows: number }> {
  await page.waitForFunction(
    ({ sel, cols, rows }) => {
      const t = (document.querySelector(sel) as PageTerminal | null)?.handle?.terminal;
      return !!t && (t.cols !== cols || t.rows !== rows);
    },
    { sel: selector, cols: from.cols, rows: from.rows },
  );
  return terminalSize(page, selector);
}

/** Types a line into the focused terminal. */
export async function typeLine(page: Page, selector: string, line: string): Promise<void> {
  await page.locator(`${selector} .xterm-helper-textarea`).focus();
  await page.keyboard.type(line);
  await page.keyboard.press('Enter');
}

/**
 * Replaces the page's body with `<entry-terminal id="t">` for instance 1 of `app`'s web process,
 * its tickets from `token`. The page must come from the broker (it serves /entry-terminal.js).
 * With `recordStates`, each entry-state event's state is pushed to `window.states`.
 */
/** `bearer`: the element is given the token itself, and sends it on every upgrade (no tickets). */
export async function mountTerminal(page: Page, app: string, token: string, opts: { recordStates?: boolean; instance?: number; height?: number; heading?: string; bearer?: boolean } = {}): Promise<void> {
  const states = opts.recordStates
    ? `
      window.states = [];
      t.addEventListener('entry-state', (e) => window.states.push(e.detail.state));`
    : '';
  await page.addScriptTag({
    type: 'module',
    content: `
      import { ticketsFrom } from '/entry-terminal.js';
      document.body.innerHTML = ${JSON.stringify(opts.heading ? `<h1>${opts.heading}</h1>` : '')};
      const t = document.createElement('entry-terminal');
      t.id = 't';
      t.setAttribute('app', ${JSON.stringify(app)});
      t.setAttribute('proc', 'web');
      t.setAttribute('instance', '${opts.instance ?? 1}');
      t.style.height = '${opts.height ?? 600}px';${states}
      ${opts.bearer ? `t.token = ${JSON.stringify(token)};` : `t.ticketProvider = ticketsFrom(${JSON.stringify(token)});`}
      document.body.append(t);`,
  });
}

/** Requests held by the network until the test lets each through (`route.continue()`), in the order made. */
export interface HeldRequests {
  routes: Route[];
  /** Resolves once `n` requests have been held. */
  count(n: number): Promise<void>;
}

/** Holds every request of `page` matching `url` (a glob, as page.route takes) from now on; page.unroute(url) ends it. */
export async function holdRequests(page: Page, url: string): Promise<HeldRequests> {
  const routes: Route[] = [];
  let onHeld = (): void => undefined;
  await page.route(url, (route) => {
    routes.push(route);
    onHeld();
  });
  return {
    routes,
    count: (n) =>
      new Promise<void>((resolve) => {
        onHeld = () => void (routes.length >= n && resolve());
        onHeld();
      }),
  };
}

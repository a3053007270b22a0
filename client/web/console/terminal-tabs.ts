import { type Target, targetLabel } from '../broker-url.js';
import type { EntryTerminalElement } from '../terminal-element.js';
import type { TerminalState } from '../terminal.js';
import { h } from './dom.js';
import { tabLabel } from './tab-label.js';

export interface TerminalTabsElements {
  tabs: HTMLElement;
  panels: HTMLElement;
  empty: HTMLElement;
  layoutToggle: HTMLButtonElement;
}

/** What a tab shows: a terminal, a watched session, or a replay. */
export interface TabContent {
  el: HTMLElement;
  focus(): void;
  /** Called when the tab closes (a terminal ends its session by leaving the page). */
  dispose?(): void;
}

export type TabKind = 'terminal' | 'watch' | 'replay';

interface OpenTab {
  id: string;
  key: string;
  label: string;
  kind: TabKind;
  item: HTMLElement;
  tab: HTMLButtonElement;
  panel: HTMLElement;
  content: TabContent;
}

/**
 * Open terminals, watched sessions and replays as tabs (one shown at a time) or side by side.
 * Tabs follow the WAI-ARIA tabs pattern: one tab stop, arrow keys move, Delete closes.
 */
export class TerminalTabs {
  private readonly entries: OpenTab[] = [];
  private active: OpenTab | undefined;
  private counter = 0;
  private split = false;

  constructor(
    private readonly el: TerminalTabsElements,
    private readonly broker: string,
    /**
     * One-time tickets for the terminals, from whoever is signed in when one is asked for;
     * `resuming`: for a session whose connection broke, rather than a new one.
     */
    private readonly tickets: (target: Target, resuming: boolean) => Promise<string>,
    /** Where the keyboard goes when the last terminal closes. */
    private readonly onEmpty: () => void,
  ) {
    el.layoutToggle.addEventListener('click', () => this.setSplit(!this.split));
    el.tabs.addEventListener('keydown', (e) => {
      const current = this.entries.find((t) => t.tab === document.activeElement);
      if (!current) return;
      const i = this.entries.indexOf(current);
      let next: OpenTab | undefined;
      if (e.key === 'ArrowRight') next = this.entries[(i + 1) % this.entries.length];
      else if (e.key === 'ArrowLeft') next = this.entries[(i - 1 + this.entries.length) % this.entries.length];
      else if (e.key === 'Home') next = this.entries[0];
      else if (e.key === 'End') next = this.entries.at(-1);
      // Delete closes a focused tab (the tabs pattern); Backspace does not: it is the key most
      // often typed on, and a tab closed ends its session.
      else if (e.key === 'Delete') {
        e.preventDefault();
        this.close(current, true);
        return;
      } else return;
      e.preventDefault();
      if (next) {
        this.activate(next, false);
        next.tab.focus();
      }
    });
  }

  get count(): number {
    return this.entries.length;
  }

  /**
   * Terminals not closed: leaving the page ends the session of each, or the one it is opening
   * (its START may have gone already).
   */
  get unclosedTerminals(): number {
    return this.entries.filter((t) => t.kind === 'terminal' && t.tab.dataset['state'] !== 'closed').length;
  }

  /**
   * Terminals with a session going on (open, or resuming), which signing in again gets back.
   * One still connecting has none yet; one closed, none any more.
   */
  get liveSessions(): number {
    return this.entries.filter((t) => t.kind === 'terminal' && (t.tab.dataset['state'] === 'open' || t.tab.dataset['state'] === 'reconnecting')).length;
  }

  /** Opens a new terminal on `target` and focuses it. */
  add(target: Target): void {
    const key = targetLabel(target);
    const terminal = document.createElement('entry-terminal');
    terminal.setAttribute('broker', this.broker);
    terminal.setAttribute('app', target.app);
    terminal.setAttribute('proc', target.proc);
    terminal.setAttribute('instance', String(target.instance));
    terminal.ticketProvider = (t) => this.tickets(t, terminal.state === 'reconnecting');
    this.open(key, tabLabel(key, this.entries.map((t) => t.label)), 'terminal', this.terminalContent(terminal));
  }

  /** Watches a session read-only in a tab of its own (or shows the one already open). */
  watch(session: string, label: string, token: string): void {
    if (this.show(`watch:${session}`)) return;
    const terminal = document.createElement('entry-terminal');
    terminal.setAttribute('broker', this.broker);
    terminal.setAttribute('session', session);
    terminal.token = token;
    this.open(`watch:${session}`, `watch ${label}`, 'watch', this.terminalContent(terminal));
  }

  /** Watched sessions go on with a renewed token (the one they had was refused). */
  renewToken(token: string): void {
    for (const t of this.entries) if (t.kind === 'watch') (t.content.el as EntryTerminalElement).token = token;
  }

  /** Shows a replay in a tab (or the one already open for that session). */
  replay(session: string, label: string, make: () => TabContent): void {
    if (this.show(`replay:${session}`)) return;
    const content = make();
    this.open(`replay:${session}`, `replay ${label}`, 'replay', content);
    content.el.addEventListener('replay-state', (e) => {
      const tab = this.entries.find((t) => t.content === content)?.tab;
      if (tab) tab.dataset['state'] = (e as CustomEvent<{ state: string }>).detail.state;
    });
  }

  /** Activates the tab with this key, if one is open. */
  private show(key: string): boolean {
    const entry = this.entries.find((t) => t.key === key);
    if (entry) this.activate(entry, true);
    return !!entry;
  }

  private terminalContent(terminal: EntryTerminalElement): TabContent {
    return { el: terminal, focus: () => terminal.focus() };
  }

  private open(key: string, label: string, kind: TabKind, content: TabContent): void {
    const id = `term-${++this.counter}`;
    // The dot's colour says the state; the hidden text says it to a screen reader.
    const tab = h(
      'button',
      { type: 'button', className: `tab tab-${kind}`, id: `${id}-tab` },
      h('span', { className: 'dot' }),
      h('span', { className: 'label', textContent: label }),
      h('span', { className: 'visually-hidden state-text', textContent: '(connecting)' }),
    );
    tab.setAttribute('role', 'tab');
    tab.setAttribute('aria-controls', `${id}-panel`);
    tab.dataset['state'] = 'connecting';
    const closeButton = h('button', { type: 'button', className: 'tab-close', textContent: '×', title: `Close ${label} (Alt+Shift+W)` });
    closeButton.tabIndex = -1;
    closeButton.setAttribute('aria-label', `Close ${label}`);
    const item = h('div', { className: 'tab-item' }, tab, closeButton);
    item.setAttribute('role', 'presentation');

    const panel = h('div', { className: `panel panel-${kind}`, id: `${id}-panel` }, content.el);
    panel.setAttribute('role', 'tabpanel');
    panel.setAttribute('aria-labelledby', tab.id);
    panel.dataset['key'] = key;

    const entry: OpenTab = { id, key, label, kind, item, tab, panel, content };
    tab.addEventListener('click', () => this.activate(entry, true));
    closeButton.addEventListener('click', () => this.close(entry, false));
    // In the side-by-side layout, clicking into a terminal makes its tab the active one.
    panel.addEventListener('focusin', () => this.activate(entry, false));
    content.el.addEventListener('entry-state', (e) => this.showState(entry, e.detail.state));
    content.el.addEventListener('entry-close', (e) => {
      tab.title = `${label}: ${e.detail.message}`;
    });

    this.entries.push(entry);
    this.el.tabs.append(item);
    this.el.panels.append(panel);
    this.layout();
    this.activate(entry, true);
  }

  activate(entry: OpenTab, focusTerminal: boolean): void {
    if (this.active !== entry) {
      this.active = entry;
      for (const t of this.entries) {
        const selected = t === entry;
        t.tab.setAttribute('aria-selected', String(selected));
        t.tab.tabIndex = selected ? 0 : -1;
        t.item.classList.toggle('active', selected);
        t.panel.classList.toggle('active', selected);
      }
      entry.item.scrollIntoView({ block: 'nearest', inline: 'nearest' });
      document.title = `${entry.label} · Entry`;
    }
    if (focusTerminal) entry.content.focus();
  }

  /** Moves to the next (1) or previous (-1) terminal. */
  step(delta: number): void {
    if (!this.active || this.entries.length === 0) return;
    const i = this.entries.indexOf(this.active);
    const next = this.entries[(i + delta + this.entries.length) % this.entries.length];
    if (next) this.activate(next, true);
  }

  /** The shortcut's close: the keyboard goes on to the next terminal, where typing was. */
  closeActive(): void {
    if (this.active) this.close(this.active, false);
  }

  closeAll(): void {
    for (const t of [...this.entries]) this.close(t, false);
  }

  private close(entry: OpenTab, keepKeyboardInTabs: boolean): void {
    const i = this.entries.indexOf(entry);
    if (i < 0) return;
    this.entries.splice(i, 1);
    // Removing a terminal element ends its session.
    entry.item.remove();
    entry.panel.remove();
    entry.content.dispose?.();
    if (this.active === entry) {
      this.active = undefined;
      const next = this.entries[Math.min(i, this.entries.length - 1)];
      if (next) {
        this.activate(next, !keepKeyboardInTabs);
        if (keepKeyboardInTabs) next.tab.focus();
      }
    }
    this.layout();
    if (this.entries.length === 0) this.onEmpty();
  }

  private showState(entry: OpenTab, state: TerminalState | string): void {
    entry.tab.dataset['state'] = state;
    const text = entry.tab.querySelector('.state-text');
    if (text) text.textContent = `(${state === 'closed' ? 'ended' : state})`;
  }

  private setSplit(split: boolean): void {
    this.split = split;
    this.el.layoutToggle.setAttribute('aria-pressed', String(split));
    this.layout();
    this.active?.content.focus();
  }

  private layout(): void {
    const n = this.entries.length;
    if (n === 0) document.title = 'Entry';
    this.el.empty.hidden = n > 0;
    this.el.layoutToggle.hidden = n < 2;
    const split = this.split && n > 1;
    this.el.panels.classList.toggle('split', split);
    const cols = Math.ceil(Math.sqrt(n));
    this.el.panels.style.setProperty('--split-cols', String(cols));
    this.el.panels.style.setProperty('--split-rows', String(Math.ceil(n / cols)));
  }
}

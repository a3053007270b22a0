import type { SessionInfo } from '../api.js';
import { bindRowKeys, bytes, elapsed, h, localTime, shellWords } from './dom.js';

export interface SessionListElements {
  filter: HTMLInputElement;
  rows: HTMLTableSectionElement;
  status: HTMLElement;
}

export interface SessionActions {
  watch(s: SessionInfo): void;
  kill(s: SessionInfo): void;
}

export function sessionTarget(s: Pick<SessionInfo, 'app' | 'proc' | 'instance'>): string {
  return `${s.app}/${s.proc}/${s.instance}`;
}

/** The live sessions of every broker (admins), with Watch and Kill per row. */
export class SessionList {
  private sessions: SessionInfo[] = [];
  /** Sessions a kill was sent to, until they leave the list. */
  private readonly ending = new Set<string>();
  private updated: Date | undefined;

  constructor(
    private readonly el: SessionListElements,
    private readonly actions: SessionActions,
  ) {
    el.filter.addEventListener('input', () => this.render());
    el.filter.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowDown') {
        e.preventDefault();
        el.rows.querySelector<HTMLButtonElement>('button:not(:disabled)')?.focus();
      } else if (e.key === 'Escape' && el.filter.value) {
        el.filter.value = '';
        this.render();
      }
    });
    bindRowKeys(el.rows, () => el.filter.focus());
  }

  get count(): number {
    return this.sessions.length;
  }

  focusFilter(): void {
    this.el.filter.focus();
    this.el.filter.select();
  }

  showMessage(text: string): void {
    this.el.status.textContent = text;
  }

  setSessions(sessions: SessionInfo[]): void {
    this.sessions = sessions;
    const live = new Set(sessions.map((s) => s.id));
    for (const id of this.ending) if (!live.has(id)) this.ending.delete(id);
    this.updated = new Date();
    this.render();
  }

  /** Shows the row as ending (buttons off) until the next list no longer has it. */
  markEnding(id: string): void {
    this.ending.add(id);
    this.render();
  }

  clear(): void {
    this.sessions = [];
    this.ending.clear();
    this.updated = undefined;
    this.el.filter.value = '';
    this.el.rows.replaceChildren();
    this.el.status.textContent = '';
  }

  private render(): void {
    const words = this.el.filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    const visible = this.sessions.filter((s) => matches(s, words));
    const focused = document.activeElement as HTMLElement | null;
    const focusedRow = focused?.closest('tr')?.dataset['id'];
    const focusedColumn = focused?.dataset['action'];
    const now = Date.now();
    this.el.rows.replaceChildren(...visible.map((s) => this.row(s, now)));
    if (focusedRow && focusedColumn) {
      this.el.rows.querySelector<HTMLButtonElement>(`tr[data-id="${CSS.escape(focusedRow)}"] button[data-action="${focusedColumn}"]:not(:disabled)`)?.focus();
    }
    const total = this.sessions.length;
    const counted = total === 0 ? 'No live session.' : visible.length === total ? `${total} live session${total === 1 ? '' : 's'}` : `${visible.length} of ${total} sessions`;
    this.el.status.textContent = this.updated ? `${counted} · updated ${this.updated.toLocaleTimeString()}` : counted;
  }

  private row(s: SessionInfo, now: number): HTMLTableRowElement {
    const target = sessionTarget(s);
    const ending = this.ending.has(s.id);
    const watch = h('button', { type: 'button', className: 'watch', textContent: 'Watch' });
    watch.dataset['action'] = 'watch';
    watch.setAttribute('aria-label', `Watch ${s.user} on ${target}`);
    watch.addEventListener('click', () => this.actions.watch(s));
    // An attach shows the container's own output, which anyone allowed can attach to: nothing to watch.
    watch.disabled = s.attach === true;
    const kill = h('button', { type: 'button', className: 'kill', textContent: ending ? 'Ending…' : 'Kill' });
    kill.dataset['action'] = 'kill';
    kill.setAttribute('aria-label', `Kill the session of ${s.user} on ${target}`);
    kill.disabled = ending;
    kill.addEventListener('click', () => this.actions.kill(s));
    const command = commandLabel(s, shellWords);
    const tr = h(
      'tr',
      {},
      h('td', { className: 'user', textContent: s.user, title: s.user }),
      h('td', { className: 'target', textContent: target, title: `${target}\ncontainer ${s.container.slice(0, 12)} on ${s.dockerHost}\nbroker ${s.broker}` }),
      h('td', { className: 'from', textContent: s.source, title: `from ${s.source}` }),
      h('td', { className: 'num', textContent: elapsed(s.startedAt, now), title: `started ${localTime(s.startedAt)}` }),
      h('td', { className: 'num io', textContent: `${bytes(s.bytesIn)} / ${bytes(s.bytesOut)}`, title: `${s.bytesIn} bytes in (typed), ${s.bytesOut} bytes out` }),
      h('td', { className: s.command ? 'command' : 'command shell', textContent: command, title: `${command}${s.tty ? ' (TTY)' : ''}\nsession ${s.id}` }),
      h('td', { className: 'action' }, watch, kill),
    );
    tr.dataset['id'] = s.id;
    if (ending) tr.classList.add('ending');
    return tr;
  }
}

/** What a session runs, in words: its command, or what it is when it has none. */
function commandLabel(s: SessionInfo, words: (argv: string[]) => string): string {
  if (s.attach) return '(attach)';
  return s.command ? words(s.command) : '(shell)';
}

function matches(s: SessionInfo, words: string[]): boolean {
  if (words.length === 0) return true;
  const hay = `${s.user} ${sessionTarget(s)} ${s.source} ${commandLabel(s, (argv) => argv.join(' '))} ${s.id} ${s.broker}`.toLowerCase();
  return words.every((w) => hay.includes(w));
}

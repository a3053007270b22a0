import type { ContainerInfo } from '../api.js';
import { age, h } from './dom.js';

export interface ContainerListElements {
  search: HTMLInputElement;
  stateFilter: HTMLSelectElement;
  rows: HTMLTableSectionElement;
  status: HTMLElement;
}

export function containerKey(c: Pick<ContainerInfo, 'app' | 'proc' | 'instance'>): string {
  return `${c.app}/${c.proc}/${c.instance}`;
}

/** The filterable table of enterable containers, one "Enter" button per instance. */
export class ContainerList {
  private containers: ContainerInfo[] = [];
  private visible: ContainerInfo[] = [];

  constructor(
    private readonly el: ContainerListElements,
    private readonly onEnter: (c: ContainerInfo) => void,
  ) {
    el.search.addEventListener('input', () => this.render());
    el.stateFilter.addEventListener('change', () => this.render());
    el.search.addEventListener('keydown', (e) => {
      const first = this.visible.find((c) => c.state === 'running');
      if (e.key === 'Enter' && first) {
        e.preventDefault();
        this.onEnter(first);
      } else if (e.key === 'ArrowDown') {
        e.preventDefault();
        this.buttons()[0]?.focus();
      } else if (e.key === 'Escape' && el.search.value) {
        el.search.value = '';
        this.render();
      }
    });
    // Arrow keys walk the Enter buttons, like a list.
    el.rows.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
      const buttons = this.buttons();
      const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
      if (i < 0) return;
      e.preventDefault();
      if (e.key === 'ArrowUp' && i === 0) el.search.focus();
      else buttons[Math.min(buttons.length - 1, Math.max(0, i + (e.key === 'ArrowDown' ? 1 : -1)))]?.focus();
    });
  }

  focusSearch(): void {
    this.el.search.focus();
    this.el.search.select();
  }

  showMessage(text: string): void {
    this.el.status.textContent = text;
  }

  /** Empties the list, its search and state filter (signed out): nothing of it is left for the next user. */
  clear(): void {
    this.containers = [];
    this.visible = [];
    this.el.search.value = '';
    this.el.stateFilter.value = '';
    this.updateStates();
    this.el.rows.replaceChildren();
    this.el.status.textContent = '';
  }

  setContainers(containers: ContainerInfo[]): void {
    this.containers = [...containers].sort(
      (a, b) => a.app.localeCompare(b.app) || a.proc.localeCompare(b.proc) || a.instance.localeCompare(b.instance, undefined, { numeric: true }),
    );
    this.updateStates();
    this.render();
  }

  private updateStates(): void {
    const select = this.el.stateFilter;
    const chosen = select.value;
    // A state chosen stays chosen when a reload finds no container in it any more: the list
    // shows none rather than all of them behind the user's back.
    const states = [...new Set([...this.containers.map((c) => c.state), ...(chosen ? [chosen] : [])])].sort();
    select.replaceChildren(h('option', { textContent: 'All states' }), ...states.map((s) => h('option', { textContent: s })));
    (select.options[0] as HTMLOptionElement).value = '';
    select.value = states.includes(chosen) ? chosen : '';
  }

  private render(): void {
    const words = this.el.search.value.toLowerCase().split(/\s+/).filter(Boolean);
    const state = this.el.stateFilter.value;
    this.visible = this.containers.filter((c) => (!state || c.state === state) && matches(c, words));
    // Rebuilding the rows must not lose the keyboard position.
    const focusedKey = (document.activeElement as HTMLElement | null)?.closest('tr')?.dataset['key'];
    const now = Date.now();
    this.el.rows.replaceChildren(...this.visible.map((c) => this.row(c, now)));
    if (focusedKey) this.el.rows.querySelector<HTMLButtonElement>(`tr[data-key="${CSS.escape(focusedKey)}"] button`)?.focus();
    const total = this.containers.length;
    this.el.status.textContent =
      total === 0 ? 'No container you may enter is running.' : this.visible.length === total ? `${total} container${total === 1 ? '' : 's'}` : `${this.visible.length} of ${total} containers`;
  }

  private row(c: ContainerInfo, now: number): HTMLTableRowElement {
    const key = containerKey(c);
    const button = h('button', { type: 'button', className: 'enter', textContent: 'Enter' });
    button.setAttribute('aria-label', `Enter ${key}`);
    if (c.state !== 'running') {
      button.disabled = true;
      button.title = `${key} is ${c.state}${c.reason ? ` (${c.reason})` : ''}`;
    }
    button.addEventListener('click', () => this.onEnter(c));
    const stateTitle = c.created ? `created ${age(c.created, now)}` : '';
    const tr = h(
      'tr',
      {},
      h('td', { className: 'app', textContent: c.app, title: c.app }),
      h('td', { textContent: c.proc, title: c.proc }),
      h('td', { className: 'num', textContent: c.instance }),
      h('td', {}, h('span', { className: `state state-${c.state.replace(/[^a-z]/gi, '')}`, textContent: c.state, title: stateTitle })),
      h('td', { className: 'image', textContent: c.image, title: c.name ? `${c.image} — ${c.name}` : c.image }),
      h('td', { className: 'action' }, button),
    );
    tr.dataset['key'] = key;
    return tr;
  }

  private buttons(): HTMLButtonElement[] {
    return [...this.el.rows.querySelectorAll<HTMLButtonElement>('button.enter:not(:disabled)')];
  }
}

function matches(c: ContainerInfo, words: string[]): boolean {
  if (words.length === 0) return true;
  const hay = `${containerKey(c)} ${c.app} ${c.proc} ${c.instance} ${c.state} ${c.image} ${c.name}`.toLowerCase();
  return words.every((w) => hay.includes(w));
}

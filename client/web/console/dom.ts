/** Small DOM helpers for the console: typed lookups and element building. */

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`console page lacks #${id}`);
  return el as T;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<Record<'className' | 'textContent' | 'title' | 'type' | 'id', string>> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  Object.assign(el, props);
  el.append(...children);
  return el;
}

/** "3 min ago", "2 h ago", "5 d ago" from an ISO date; "" when unparsable. */
export function age(iso: string, now = Date.now()): string {
  const d = elapsed(iso, now);
  return d && `${d} ago`;
}

/** "42 s", "3 min", "2 h 5 min", "5 d" since an ISO date; "" when unparsable. */
export function elapsed(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ''}`;
  return `${Math.floor(s / 86400)} d`;
}

/** "812 B", "4.1 kB", "12 MB". */
export function bytes(n: number): string {
  if (!Number.isFinite(n)) return '';
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let unit = '';
  for (const u of units) {
    v /= 1000;
    unit = u;
    if (v < 1000) break;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${unit}`;
}

/** "850 ms", "12.5 s", "3 min 4 s", "1 h 2 min". */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const whole = Math.round(s);
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${whole % 60} s`;
  return `${Math.floor(whole / 3600)} h ${Math.floor((whole % 3600) / 60)} min`;
}

/** Local time as "2025-01-31 14:05:09"; the text itself when unparsable. */
export function localTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A command line from argv, quoting the words a shell would split or expand. */
export function shellWords(argv: string[]): string {
  return argv.map((a) => (a !== '' && /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/**
 * Arrow keys move between the rows of a table, from one action button (in `td.action`) to the
 * same column of the next row that has one; ↑ from the first goes to `onTop`.
 */
export function bindRowKeys(rows: HTMLElement, onTop?: () => void): void {
  const actions = (tr: Element) => [...tr.querySelectorAll<HTMLButtonElement>('td.action button:not(:disabled)')];
  rows.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const button = document.activeElement as HTMLButtonElement | null;
    const tr = button?.closest('tr');
    if (!button || !tr || !rows.contains(tr)) return;
    const column = actions(tr).indexOf(button);
    if (column < 0) return;
    e.preventDefault();
    const all = [...rows.querySelectorAll('tr')];
    const step = e.key === 'ArrowDown' ? 1 : -1;
    for (let i = all.indexOf(tr) + step; i >= 0 && i < all.length; i += step) {
      const buttons = actions(all[i] as Element);
      if (buttons.length) {
        (buttons[Math.min(column, buttons.length - 1)] as HTMLButtonElement).focus();
        return;
      }
    }
    if (step < 0) onTop?.();
  });
}

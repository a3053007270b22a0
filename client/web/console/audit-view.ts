import { AUDIT_TYPES } from '../../../broker/audit/events.js';
import type { AuditEvent, AuditPage, AuditQuery } from '../api.js';
import { bindRowKeys, bytes, duration, h, localTime, shellWords } from './dom.js';

const PAGE_SIZE = 50;

/** The event types of the README's "Audit events" table, in the order a session meets them. */
// The broker's own list: a type it writes is one the console can filter by (session.resumed was missing).
export { AUDIT_TYPES };

export interface AuditElements {
  form: HTMLFormElement;
  rows: HTMLTableSectionElement;
  status: HTMLElement;
  more: HTMLButtonElement;
}

export interface AuditActions {
  load(query: AuditQuery): Promise<AuditPage>;
  replay(e: AuditEvent): void;
  /** Failures other than "not signed in any more", which the caller handles. */
  failed(err: unknown): boolean;
}

/**
 * The audit trail (admins): filters by user, app, type, session, command text and time range,
 * newest first, one page at a time ("Load older events" follows `next`).
 */
export class AuditView {
  private query: AuditQuery = {};
  private next: string | undefined;
  private shown = 0;
  private loaded = false;
  private generation = 0;

  constructor(
    private readonly el: AuditElements,
    private readonly actions: AuditActions,
  ) {
    const typeSelect = this.field<HTMLSelectElement>('type');
    typeSelect.append(...AUDIT_TYPES.map((t) => Object.assign(h('option', { textContent: t }), { value: t })));
    el.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.search();
    });
    // A reset clears the fields first, then searches everything.
    el.form.addEventListener('reset', () => setTimeout(() => void this.search()));
    typeSelect.addEventListener('change', () => void this.search());
    el.more.addEventListener('click', () => void this.loadMore());
    bindRowKeys(el.rows, () => this.focusFilter());
  }

  focusFilter(): void {
    const q = this.field<HTMLInputElement>('q');
    q.focus();
    q.select();
  }

  /** Loads the first page unless it already has one. */
  show(): void {
    if (!this.loaded) void this.search();
  }

  clear(): void {
    this.generation++;
    this.el.form.reset();
    this.el.rows.replaceChildren();
    this.el.status.textContent = '';
    this.el.more.hidden = true;
    this.loaded = false;
  }

  /** Shows the events of one session. */
  filterSession(session: string): void {
    this.el.form.reset();
    this.field<HTMLInputElement>('session').value = session;
    void this.search();
  }

  async search(): Promise<void> {
    const f = (name: string) => this.field<HTMLInputElement>(name).value.trim();
    const query: AuditQuery = { limit: PAGE_SIZE };
    for (const k of ['user', 'app', 'type', 'session', 'q'] as const) if (f(k)) query[k] = f(k);
    for (const k of ['since', 'until'] as const) {
      const v = f(k);
      const t = v ? new Date(v) : undefined;
      if (t && !Number.isNaN(t.getTime())) query[k] = t.toISOString();
    }
    this.query = query;
    this.loaded = true;
    await this.fetchPage(false);
  }

  private async loadMore(): Promise<void> {
    if (this.next) await this.fetchPage(true);
  }

  private async fetchPage(append: boolean): Promise<void> {
    const generation = ++this.generation;
    this.el.status.textContent = 'Loading…';
    this.el.more.disabled = true;
    let page: AuditPage;
    try {
      page = await this.actions.load(append && this.next ? { ...this.query, cursor: this.next } : this.query);
    } catch (err) {
      if (generation !== this.generation) return;
      this.el.more.disabled = false;
      if (this.actions.failed(err)) this.el.status.textContent = `Could not load the audit trail: ${(err as Error).message}`;
      return;
    }
    if (generation !== this.generation) return;
    const rows = page.events.map((e) => this.row(e));
    if (append) {
      this.el.rows.append(...rows);
      this.shown += rows.length;
      // The keyboard continues with the first of the new rows.
      rows[0]?.querySelector('button')?.focus();
    } else {
      this.el.rows.replaceChildren(...rows);
      this.shown = rows.length;
    }
    this.next = page.next;
    this.el.more.hidden = !page.next;
    this.el.more.disabled = false;
    // A page can come back empty with more to read: the broker reads so many events per query.
    const none = page.next ? 'No match among the events read so far; “Load older events” reads on.' : 'No event matches.';
    this.el.status.textContent = this.shown === 0 ? none : `${this.shown} event${this.shown === 1 ? '' : 's'}${page.next ? ', newest first; more below' : ''}`;
  }

  private row(e: AuditEvent): HTMLTableRowElement {
    const target = e.app ? `${e.app}/${e.proc ?? '?'}/${e.instance ?? '?'}` : '';
    const action = h('td', { className: 'action' });
    if (e.sessionId && (e.type === 'session.start' || e.type === 'session.end')) {
      const replay = h('button', { type: 'button', className: 'replay-button', textContent: 'Replay' });
      replay.setAttribute('aria-label', `Replay session ${e.sessionId.slice(0, 8)} of ${e.user ?? '?'} on ${target}`);
      replay.addEventListener('click', () => this.actions.replay(e));
      action.append(replay);
    }
    const tr = h(
      'tr',
      {},
      h('td', { className: 'time', textContent: localTime(e.time), title: `${e.time}\nbroker ${e.broker}` }),
      h('td', {}, h('span', { className: `type type-${e.type.replace(/\./g, '-')}`, textContent: e.type })),
      h('td', { className: 'user', textContent: e.user ?? e.claimedUser ?? '', title: e.claimedUser && !e.user ? `claimed (unverified): ${e.claimedUser}` : (e.user ?? '') }),
      h('td', { className: 'target', title: e.container ? `${target}\ncontainer ${e.container.slice(0, 12)}${e.host ? ` on ${e.host}` : ''}` : target }, ...breakAfterSlashes(target)),
      h('td', { className: 'details' }, ...details(e), ...this.sessionLink(e)),
      action,
    );
    tr.dataset['type'] = e.type;
    if (e.sessionId) tr.dataset['session'] = e.sessionId;
    return tr;
  }

  private sessionLink(e: AuditEvent): Array<Node | string> {
    if (!e.sessionId) return [];
    const link = h('button', { type: 'button', className: 'session-link', textContent: `#${e.sessionId.slice(0, 8)}`, title: `Show only the events of session ${e.sessionId}` });
    link.tabIndex = -1;
    link.addEventListener('click', () => this.filterSession(e.sessionId ?? ''));
    return [' ', link];
  }

  private field<T extends HTMLInputElement | HTMLSelectElement>(name: string): T {
    const f = this.el.form.elements.namedItem(name);
    if (!f) throw new Error(`audit form lacks ${name}`);
    return f as T;
  }
}

/** "shop/web/1" with line-break chances after the slashes. */
function breakAfterSlashes(text: string): Array<Node | string> {
  return text.split(/(?<=\/)/).flatMap((part, i) => (i ? [h('wbr'), part] : [part]));
}

/** The facts that matter for each type of event. */
function details(e: AuditEvent): Array<Node | string> {
  const code = (text: string, className = 'code') => h('code', { className, textContent: text });
  const muted = (text: string) => h('span', { className: 'muted', textContent: text });
  switch (e.type) {
    case 'command':
    case 'alert': {
      const out: Array<Node | string> = [e.hidden ? muted('(typed at a password prompt: not kept)') : code(e.line ?? '', 'line')];
      if (e.type === 'alert' && e.rule) out.push(' ', muted(`rule ${e.rule}`));
      if (e.exact === false) out.push(' ', muted('(inexact: history or completion)'));
      return out;
    }
    case 'exec': {
      const out: Array<Node | string> = [code(shellWords(e.argv ?? []), 'line')];
      if (e.argvTruncated) out.push(' ', muted('(cut at 4,096 characters)'));
      const how = [e.runAs ? `as ${e.runAs}` : '', e.workdir ? `in ${e.workdir}` : ''].filter(Boolean).join(' ');
      if (how) out.push(' ', muted(how));
      return out;
    }
    case 'session.start':
      return [muted([e.tty ? 'interactive (TTY)' : 'scripted', e.source ? `from ${e.source}` : ''].filter(Boolean).join(' · '))];
    case 'session.end': {
      const ending = e.how === 'exited' && e.exitCode !== undefined ? `exited with code ${e.exitCode}` : [e.how, e.code, e.reason].filter(Boolean).join(': ');
      const facts = [e.durationMs !== undefined ? duration(e.durationMs) : '', e.bytesIn !== undefined && e.bytesOut !== undefined ? `${bytes(e.bytesIn)} in / ${bytes(e.bytesOut)} out` : ''].filter(Boolean).join(' · ');
      return [h('span', { textContent: ending }), ...(facts ? [' ', muted(facts)] : [])];
    }
    case 'session.refused':
    case 'auth.failure':
      return [
        h('span', { textContent: e.reason ?? '' }),
        ' ',
        muted([e.code, e.source ? `from ${e.source}` : '', e.claimedUser ? `claimed ${e.claimedUser}` : ''].filter(Boolean).join(' · ')),
      ];
    case 'session.kill':
      return [h('span', { textContent: `by ${e.by ?? '?'}` })];
    case 'session.watch':
      return [h('span', { textContent: `watched by ${e.by ?? '?'}` }), ...(e.source ? [' ', muted(`from ${e.source}`)] : [])];
    case 'token.revoke':
      return [
        h('span', { textContent: e.jti ? `token ${e.jti} revoked by ${e.by ?? '?'}` : `tokens of ${e.user ?? '?'} issued before ${e.before ?? '?'} revoked by ${e.by ?? '?'}` }),
        ...(e.until ? [' ', muted(`until ${e.until}`)] : []),
      ];
    case 'recording.read':
      return [h('span', { textContent: `recording read by ${e.by ?? '?'}` }), ...(e.source ? [' ', muted(`from ${e.source}`)] : [])];
    default:
      return [muted(e.reason ?? '')];
  }
}

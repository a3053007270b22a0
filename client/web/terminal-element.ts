import type { Target } from './broker-url.js';
import { openTerminal, openWatch, type TerminalAuth, type TerminalCloseInfo, type TerminalHandle, type TerminalState } from './terminal.js';

type TicketProvider = (target: Target) => Promise<string>;

/**
 * `<entry-terminal app="shop" proc="web" instance="1" broker="https://entry.example.com">`:
 * a terminal in the target container. Credentials are properties, never attributes (they
 * would show in the DOM): set `token`, or `ticketProvider` (a function returning a one-time
 * ticket). The session starts once the element is in the document with a target and a
 * credential, and ends when it leaves the document (not when it is moved within it). A new
 * credential of the same kind is used from the next connection on.
 *
 * `<entry-terminal session="ID">` with an admin's `token` watches that session instead,
 * read-only (nothing typed is sent).
 *
 * Events: `entry-state` (detail: { state }), `entry-close` (detail: TerminalCloseInfo).
 */
export class EntryTerminalElement extends HTMLElement {
  static readonly observedAttributes = ['app', 'proc', 'instance', 'broker', 'session'];

  #token: string | undefined;
  #ticketProvider: TicketProvider | undefined;
  #handle: TerminalHandle | undefined;
  #startQueued = false;
  #focusOnStart = false;

  get token(): string | undefined {
    return this.#token;
  }
  set token(value: string | undefined) {
    // The same credential again (a page re-rendering) must not restart a running session.
    if ((value || undefined) === this.#token) return;
    const kept = this.#keeps(Boolean(this.#token), Boolean(value));
    this.#token = value || undefined;
    if (!kept) this.#restart();
  }

  get ticketProvider(): TicketProvider | undefined {
    return this.#ticketProvider;
  }
  set ticketProvider(value: TicketProvider | undefined) {
    if (value === this.#ticketProvider) return;
    // With a token the provider is not what the session uses.
    const kept = this.#token ? this.#handle !== undefined : this.#keeps(Boolean(this.#ticketProvider), Boolean(value));
    this.#ticketProvider = value;
    if (!kept) this.#restart();
  }

  /**
   * Whether a running session goes on with a new credential of the same kind (a token renewed,
   * a provider a framework made again on re-render): it is read at the next connection, a
   * resume's included. Another kind, or none, starts over.
   */
  #keeps(had: boolean, has: boolean): boolean {
    return had && has && this.#handle !== undefined && !this.hasAttribute('session');
  }

  /** The running terminal, once started. */
  get handle(): TerminalHandle | undefined {
    return this.#handle;
  }

  get state(): TerminalState {
    return this.#handle?.state ?? 'closed';
  }

  reconnect(): void {
    if (this.#handle) this.#handle.reconnect();
    else this.#queueStart();
  }

  close(): void {
    this.#handle?.close();
  }

  override focus(): void {
    if (this.#handle) this.#handle.focus();
    else this.#focusOnStart = true;
  }

  connectedCallback(): void {
    // A page may have set properties before this module defined the element.
    for (const prop of ['token', 'ticketProvider'] as const) {
      if (Object.prototype.hasOwnProperty.call(this, prop)) {
        const value = (this as Record<string, unknown>)[prop];
        delete (this as Record<string, unknown>)[prop];
        (this as Record<string, unknown>)[prop] = value;
      }
    }
    this.#queueStart();
  }

  disconnectedCallback(): void {
    // Moved in the document (removed and put back in the same task): the session goes on.
    queueMicrotask(() => {
      if (this.isConnected) return;
      this.#handle?.dispose();
      this.#handle = undefined;
    });
  }

  attributeChangedCallback(_name: string, oldValue: string | null, newValue: string | null): void {
    if (oldValue !== newValue) this.#restart();
  }

  #restart(): void {
    if (!this.#handle) {
      this.#queueStart();
      return;
    }
    this.#handle.dispose();
    this.#handle = undefined;
    this.#queueStart();
  }

  // Deferred to a microtask so that attributes and properties set together start one session.
  #queueStart(): void {
    if (this.#startQueued) return;
    this.#startQueued = true;
    queueMicrotask(() => {
      this.#startQueued = false;
      this.#start();
    });
  }

  #start(): void {
    if (this.#handle || !this.isConnected) return;
    const broker = this.getAttribute('broker');
    const events = {
      onStateChange: (state: TerminalState) => this.dispatchEvent(new CustomEvent('entry-state', { detail: { state } })),
      onClose: (info: TerminalCloseInfo) => this.dispatchEvent(new CustomEvent<TerminalCloseInfo>('entry-close', { detail: info })),
    };
    const session = this.getAttribute('session');
    if (session) {
      if (!this.#token) return;
      this.#handle = openWatch(this, { ...(broker ? { broker } : {}), session, token: this.#token, ...events });
      this.#afterStart();
      return;
    }
    const app = this.getAttribute('app');
    const proc = this.getAttribute('proc');
    const instance = this.getAttribute('instance');
    // Read at each connection, so that a renewed credential is the one a resume uses.
    const read = { token: () => this.#token ?? '', provider: (t: Target) => this.#ticketProvider!(t) };
    const auth: TerminalAuth | undefined = this.#token ? { get token() { return read.token(); } } : this.#ticketProvider ? { ticketProvider: read.provider } : undefined;
    if (!app || !proc || !instance || !auth) return;
    this.#handle = openTerminal(this, { ...(broker ? { broker } : {}), target: { app, proc, instance }, auth, ...events });
    this.#afterStart();
  }

  #afterStart(): void {
    if (this.#focusOnStart && this.#handle) {
      this.#focusOnStart = false;
      this.#handle.focus();
    }
  }
}

export function defineEntryTerminal(name = 'entry-terminal'): void {
  if (!customElements.get(name)) customElements.define(name, EntryTerminalElement);
}

declare global {
  interface HTMLElementTagNameMap {
    'entry-terminal': EntryTerminalElement;
  }
  interface HTMLElementEventMap {
    'entry-state': CustomEvent<{ state: TerminalState }>;
    'entry-close': CustomEvent<TerminalCloseInfo>;
  }
}

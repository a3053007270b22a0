import type { Target } from './broker-url.js';
import { openTerminal, openWatch, type TerminalAuth, type TerminalCloseInfo, type TerminalHandle, type TerminalState } from './terminal.js';

type TicketProvider = (target: Target) => Promise<string>;

/**
 * `<entry-terminal app="shop" proc="web" instance="1" broker="https://entry.example.com">`:
 * a terminal in the target container. Credentials are properties, never attributes (they
 * would show in the DOM): set `token`, or `ticketProvider` (a function returning a one-time
 * ticket). The session starts once the element is in the document with a target and a
 * credential, and ends when it leaves the document.
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
    this.#token = value || undefined;
    this.#restart();
  }

  get ticketProvider(): TicketProvider | undefined {
    return this.#ticketProvider;
  }
  set ticketProvider(value: TicketProvider | undefined) {
    if (value === this.#ticketProvider) return;
    this.#ticketProvider = value;
    this.#restart();
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
    this.#handle?.dispose();
    this.#handle = undefined;
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
    const auth: TerminalAuth | undefined = this.#token ? { token: this.#token } : this.#ticketProvider ? { ticketProvider: this.#ticketProvider } : undefined;
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

/**
 * The embeddable Entry terminal: `openTerminal(element, options)` for scripts, and the
 * `<entry-terminal>` element, defined by importing this module.
 */
import { defineEntryTerminal } from './terminal-element.js';

export { ApiError, BrokerApi, ticketsFrom, type ContainerInfo, type Ticket, type WhoAmI } from './api.js';
export type { Target } from './broker-url.js';
export { EntryTerminalElement, defineEntryTerminal } from './terminal-element.js';
export { openTerminal, openWatch, type TerminalAuth, type TerminalCloseInfo, type TerminalHandle, type TerminalOptions, type TerminalState, type WatchOptions } from './terminal.js';

defineEntryTerminal();

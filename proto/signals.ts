/** The signals a client may send (SIGNAL, protocol 2), named without SIG; the broker ignores any other name. */
export const CLIENT_SIGNALS: ReadonlySet<string> = new Set(['HUP', 'INT', 'QUIT', 'TERM', 'KILL', 'USR1', 'USR2', 'WINCH']);

/** The name of a client's SIGNAL as CLIENT_SIGNALS spells it (`sigint` → `INT`). */
export function signalName(name: string): string {
  return name.toUpperCase().replace(/^SIG/, '');
}

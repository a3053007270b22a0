/** What an escape sequence asks the session to do. */
export type EscapeAction = 'disconnect' | 'help';

/**
 * ssh-style escapes in the keyboard input of an interactive session. The escape character
 * (default `~`) counts only at the start of a line (after Enter, or as the session's first
 * key): `~.` ends the session, `~?` lists the escapes, `~~` sends one `~`. Any other key after
 * it sends both, so typing `~/` at a prompt works as usual.
 */
export class EscapeFilter {
  private atLineStart = true;
  private pending = false;

  constructor(readonly escapeChar: number) {}

  /** Returns the bytes to send on, and the escapes recognised in this chunk, in order. */
  feed(chunk: Uint8Array): { data: Buffer; actions: EscapeAction[] } {
    const out: number[] = [];
    const actions: EscapeAction[] = [];
    for (const byte of chunk) {
      if (this.pending) {
        this.pending = false;
        if (byte === 0x2e /* . */) {
          actions.push('disconnect');
          // Nothing typed after ~. goes anywhere.
          return { data: Buffer.from(out), actions };
        }
        if (byte === 0x3f /* ? */) {
          actions.push('help');
          this.atLineStart = true;
          continue;
        }
        if (byte === this.escapeChar) {
          out.push(byte);
          this.atLineStart = false;
          continue;
        }
        out.push(this.escapeChar);
        // Falls through: the key after it is an ordinary key.
      } else if (this.atLineStart && byte === this.escapeChar) {
        this.pending = true;
        continue;
      }
      out.push(byte);
      this.atLineStart = byte === 0x0d || byte === 0x0a;
    }
    return { data: Buffer.from(out), actions };
  }
}

/** `--escape CHAR`: one character, `^X` for a control character, or `none`. Null: disabled. */
export function parseEscapeChar(value: string): number | null {
  if (value === 'none') return null;
  if (/^\^[@A-Za-z[\\\]^_?]$/.test(value)) {
    const c = value.toUpperCase().charCodeAt(1);
    return c === 0x3f ? 0x7f : c & 0x1f;
  }
  if (Buffer.byteLength(value) === 1) return value.charCodeAt(0);
  throw new Error(`wants one character, ^X or none, got ${JSON.stringify(value)}`);
}

function show(char: number): string {
  if (char < 0x20) return `^${String.fromCharCode(char + 0x40)}`;
  if (char === 0x7f) return '^?';
  return String.fromCharCode(char);
}

/** The list `~?` prints (CRLF: the terminal is in raw mode). */
export function escapeHelp(char: number): string {
  const e = show(char);
  return [
    `${e}?`,
    'Supported escape sequences:',
    ` ${e}.   - end the session`,
    ` ${e}?   - this message`,
    ` ${e}${e}   - send the escape character by typing it twice`,
    // Lines under 80 columns, as ssh's: a terminal of that width does not wrap them mid-word.
    '(Escapes are only recognized right after Enter. Change the character',
    ' with --escape, or turn them off with --escape none.)',
    '',
  ].join('\r\n');
}

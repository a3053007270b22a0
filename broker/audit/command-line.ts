/**
 * Rebuilds the command lines a user typed from the raw keystrokes of a TTY session, the way a
 * readline-style editor would apply them: printable text, Backspace, Ctrl-U, Ctrl-W, Ctrl-A/E,
 * left/right arrows, Home/End, Delete, Ctrl-C (abandons the line), Enter (ends it).
 *
 * Best effort by nature: what the shell itself supplies cannot be seen in the input — history
 * (up/down arrows, Ctrl-R), Tab completion, aliases, a program reading raw keys (vi). Lines
 * touched by those are reported with `exact: false`.
 */
export interface CommandLine {
  line: string;
  exact: boolean;
}

/** Longest line kept; the rest of a pasted novel is not a command worth storing whole. */
const MAX_LINE = 4096;

export class CommandLineTracker {
  private chars: string[] = [];
  private cursor = 0;
  private exact = true;
  private escape = '';
  private readonly decoder = new TextDecoder();

  /** Feeds input bytes; returns the lines completed by them. */
  push(data: Uint8Array): CommandLine[] {
    const done: CommandLine[] = [];
    for (const ch of this.decoder.decode(data, { stream: true })) {
      if (this.escape) {
        this.escape += ch;
        if (this.escapeComplete()) this.applyEscape();
        continue;
      }
      switch (ch) {
        case '\r':
        case '\n': {
          const line = this.chars.join('').trim();
          if (line) done.push({ line, exact: this.exact });
          this.reset();
          break;
        }
        case '\x7f':
        case '\b':
          if (this.cursor > 0) {
            this.chars.splice(this.cursor - 1, 1);
            this.cursor--;
          }
          break;
        case '\x15': // Ctrl-U: kill to the start
          this.chars.splice(0, this.cursor);
          this.cursor = 0;
          break;
        case '\x17': {
          // Ctrl-W: delete the word before the cursor (and the spaces after it)
          let i = this.cursor;
          while (i > 0 && this.chars[i - 1] === ' ') i--;
          while (i > 0 && this.chars[i - 1] !== ' ') i--;
          this.chars.splice(i, this.cursor - i);
          this.cursor = i;
          break;
        }
        case '\x01':
          this.cursor = 0;
          break;
        case '\x05':
          this.cursor = this.chars.length;
          break;
        case '\x0b': // Ctrl-K: kill to the end
          this.chars.splice(this.cursor);
          break;
        case '\x03': // Ctrl-C abandons the line
          this.reset();
          break;
        case '\t':
        case '\x12': // Tab completion or Ctrl-R search: the shell fills in what we cannot see
          this.exact = false;
          break;
        case '\x1b':
          this.escape = ch;
          break;
        default:
          if (ch >= ' ' && this.chars.length < MAX_LINE) {
            this.chars.splice(this.cursor, 0, ch);
            this.cursor++;
          }
      }
    }
    return done;
  }

  private escapeComplete(): boolean {
    const e = this.escape;
    if (e.length === 2) return e[1] !== '[' && e[1] !== 'O';
    return /[A-Za-z~]$/.test(e) || e.length > 8;
  }

  private applyEscape(): void {
    const e = this.escape;
    this.escape = '';
    switch (e) {
      case '\x1b[D':
      case '\x1bOD':
        if (this.cursor > 0) this.cursor--;
        return;
      case '\x1b[C':
      case '\x1bOC':
        if (this.cursor < this.chars.length) this.cursor++;
        return;
      case '\x1b[H':
      case '\x1bOH':
      case '\x1b[1~':
        this.cursor = 0;
        return;
      case '\x1b[F':
      case '\x1bOF':
      case '\x1b[4~':
        this.cursor = this.chars.length;
        return;
      case '\x1b[3~':
        this.chars.splice(this.cursor, 1);
        return;
      default:
        // History (up/down) and anything else we cannot follow.
        this.exact = false;
    }
  }

  private reset(): void {
    this.chars = [];
    this.cursor = 0;
    this.exact = true;
  }
}

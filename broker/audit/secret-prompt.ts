/**
 * What a terminal showed last, to tell a line typed at a password prompt from a command. With
 * echo off (sudo, su, ssh, passwd, `mysql -p`, `read -s`) nothing comes back while the secret is
 * typed, so the output last seen when Enter comes ends with the prompt itself. A command typed at
 * a shell is echoed, so that output ends with its own echo and no prompt matches.
 */
export class PromptWatch {
  /**
   * The last PROMPT_TAIL_BYTES of the output since the last keystroke (`held` of them): a prompt
   * may come in pieces, but the echo of a command typed at a shell replaces the prompt before it
   * (a shell prompt may well name a password store). One buffer per session, written over: no
   * allocation per output chunk.
   */
  private readonly tail = Buffer.allocUnsafe(PROMPT_TAIL_BYTES);
  private held = 0;
  private typedSince = false;

  /** A keystroke: the next output starts the tail afresh. */
  typed(): void {
    this.typedSince = true;
  }

  /** Keeps the end of an output chunk (copied: the chunk itself may be a view of a larger buffer). */
  seen(data: Uint8Array): void {
    const n = data.byteLength;
    if (n === 0) return;
    if (this.typedSince) {
      // A star per key typed (sudo's pwfeedback) is no echo: the prompt stays the last output.
      if (isFeedback(data)) return;
      this.typedSince = false;
      this.held = 0;
    }
    if (n >= PROMPT_TAIL_BYTES) {
      this.tail.set(data.subarray(n - PROMPT_TAIL_BYTES));
      this.held = PROMPT_TAIL_BYTES;
      return;
    }
    const keep = Math.min(this.held, PROMPT_TAIL_BYTES - n);
    this.tail.copyWithin(0, this.held - keep, this.held);
    this.tail.set(data, keep);
    this.held = keep + n;
  }

  /** Whether the output last seen asks for a secret. */
  asksForSecret(): boolean {
    // A coloured prompt ends in its colour's reset (`Password:\x1b[0m `): read as the terminal shows it.
    return SECRET_PROMPT.test(this.tail.toString('utf8', 0, this.held).replace(TERMINAL_CONTROL, ''));
  }
}

/**
 * Whether an output chunk is only what a password prompt shows for keys typed at it: `*` for a
 * key, `\b \b` for a key rubbed out. A command echoed at a shell has letters in it.
 */
function isFeedback(data: Uint8Array): boolean {
  if (data.byteLength > FEEDBACK_MAX_BYTES) return false;
  let marks = 0;
  for (const b of data) {
    if (b === 0x2a || b === 0x08) marks++;
    else if (b !== 0x20) return false;
  }
  return marks > 0;
}

/** CSI sequences (colours, cursor moves) and OSC ones (a window title), which show nothing. */
// eslint-disable-next-line no-control-regex
const TERMINAL_CONTROL = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;

/** A burst of keys typed between two reads of the terminal, as stars and rub-outs. */
const FEEDBACK_MAX_BYTES = 64;

/** Enough of the output's end for `[sudo] password for a-long-user-name:` or an ssh key's path. */
const PROMPT_TAIL_BYTES = 256;

/**
 * A prompt asking for a secret: its word, anything on the same line, and a colon or a question
 * mark ending the output. The usual English words and a few translations that tools ship with.
 */
export const SECRET_PROMPT = /(?:pass ?(?:word|phrase|code)|secret|token|api key|passwort|mot de passe|contrase[ñn]a|senha|пароль|密码|パスワード|\bpin\b|\botp\b|one-time code|verification code)[^\n]*[:?：]\s*$/iu;

/**
 * What a terminal showed last, to tell a line typed at a password prompt from a command. With
 * echo off (sudo, su, ssh, passwd, `mysql -p`, `read -s`) nothing comes back while the secret is
 * typed, so the output last seen when Enter comes is the prompt itself. A command typed at a
 * shell is echoed, so its last output is its own echo and no prompt matches.
 */
export class PromptWatch {
  private tail = '';

  /** Keeps the end of an output chunk (a copy: the chunk itself may be a view of a larger buffer). */
  seen(data: Uint8Array): void {
    const from = Math.max(0, data.byteLength - PROMPT_TAIL_BYTES);
    this.tail = decoder.decode(data.subarray(from));
  }

  /** Whether the output last seen asks for a secret. */
  asksForSecret(): boolean {
    return SECRET_PROMPT.test(this.tail);
  }
}

/** Enough of the output's end for `[sudo] password for a-long-user-name:` or an ssh key's path. */
const PROMPT_TAIL_BYTES = 256;

const decoder = new TextDecoder();

/**
 * A prompt asking for a secret: its word, anything on the same line, and a colon or a question
 * mark ending the output. The usual English words and a few translations that tools ship with.
 */
export const SECRET_PROMPT = /(?:pass(?:word|phrase|code)|passwort|mot de passe|contrase[ñn]a|senha|пароль|密码|パスワード|\bpin\b|\botp\b|one-time code|verification code)[^\n]*[:?：]\s*$/iu;

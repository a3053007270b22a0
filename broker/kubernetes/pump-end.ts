/**
 * The end of a command fed through the stdin pump (see exec-command.ts), as the wrapper tells it
 * on stderr: without it the broker would go on sending stdin to an exec whose command has ended,
 * and a kubelet that closes the exec with stdin still unread in its socket resets the
 * connection, losing the last output and the exit status on their way. Told, the broker stops
 * sending and ends the pump's input; the wrapper reads its stdin to that end before it exits,
 * so the kubelet's socket holds nothing unread when it closes. The mark carries the command's
 * exit status, for an exec that does not end soon after it (see PUMP_END_WAIT_MS).
 */

/** Longest exit status the mark carries: 0 to 255. */
const STATUS_DIGITS = 3;

/**
 * What the wrapper writes on stderr once the command has ended, before its exit status and a
 * newline; named by the session so that no output is taken for it. Its NUL makes a tail of
 * output that could be its start rare.
 */
export function pumpEndMark(sessionId: string): Buffer {
  return Buffer.from(`\0entry-stdin-end:${sessionId}:`, 'latin1');
}

/** Finds the mark in stderr and takes it out; what may be its first bytes waits for the next chunk. */
export class PumpEndWatch {
  private tail: Buffer | undefined;
  private status: number | undefined;

  constructor(private readonly mark: Buffer) {}

  /** The command's exit status once the mark has come; undefined before. */
  get exitCode(): number | undefined {
    return this.status;
  }

  /** Whether bytes wait to be told apart from the mark (see `release`). */
  get holding(): boolean {
    return this.tail !== undefined;
  }

  /** The stderr to pass on from `chunk`, the mark taken out (empty when all of it waits). */
  scan(chunk: Buffer): Buffer {
    if (this.status !== undefined && !this.tail) return chunk;
    const data = this.tail ? Buffer.concat([this.tail, chunk]) : chunk;
    this.tail = undefined;
    if (this.status !== undefined) return data;
    const at = data.indexOf(this.mark);
    if (at >= 0) {
      const digits = at + this.mark.length;
      const eol = data.indexOf(0x0a, digits);
      if (eol === -1 && data.length - digits <= STATUS_DIGITS) return this.hold(data, at);
      const text = eol === -1 ? '' : data.toString('latin1', digits, eol);
      if (/^\d{1,3}$/.test(text)) {
        this.status = Number(text);
        return Buffer.concat([data.subarray(0, at), data.subarray(eol + 1)]);
      }
    }
    // The longest tail that is the mark's beginning: it starts with NUL, the mark's first byte.
    for (let i = Math.max(0, data.length - this.mark.length + 1); i < data.length; i++) {
      if (data[i] === this.mark[0] && this.mark.subarray(0, data.length - i).equals(data.subarray(i))) return this.hold(data, i);
    }
    return data;
  }

  /** What waited as a possible start of the mark, given up on: it is output (empty if none). */
  release(): Buffer {
    const tail = this.tail ?? Buffer.alloc(0);
    this.tail = undefined;
    return tail;
  }

  private hold(data: Buffer, from: number): Buffer {
    this.tail = Buffer.from(data.subarray(from));
    return data.subarray(0, from);
  }
}

/**
 * The end of a command fed through the stdin pump (see exec-command.ts), as the wrapper tells it
 * on stderr: without it the broker would go on sending stdin to an exec whose command has ended,
 * and a kubelet that closes the exec with stdin still unread in its socket resets the
 * connection, losing the last output and the exit status on their way. Told, the broker stops
 * sending and ends the pump's input; the wrapper reads its stdin to that end before it exits,
 * so the kubelet's socket holds nothing unread when it closes.
 */

/**
 * The line the wrapper writes on stderr once the command has ended, named by the session so that
 * no output is taken for it. Its NUL makes a tail of output that could be its start rare.
 */
export function pumpEndMark(sessionId: string): Buffer {
  return Buffer.from(`\0entry-stdin-end:${sessionId}\n`, 'latin1');
}

/** Finds the mark in stderr and takes it out; what may be its first bytes waits for the next chunk. */
export class PumpEndWatch {
  private tail: Buffer | undefined;
  private seen = false;

  constructor(private readonly mark: Buffer) {}

  /** Whether the mark has come: the command has ended. */
  get ended(): boolean {
    return this.seen;
  }

  /** Whether bytes wait to be told apart from the mark's start (see `release`). */
  get holding(): boolean {
    return this.tail !== undefined;
  }

  /** The stderr to pass on from `chunk`, the mark taken out (empty when all of it waits). */
  scan(chunk: Buffer): Buffer {
    if (this.seen && !this.tail) return chunk;
    const data = this.tail ? Buffer.concat([this.tail, chunk]) : chunk;
    this.tail = undefined;
    if (this.seen) return data;
    const at = data.indexOf(this.mark);
    if (at >= 0) {
      this.seen = true;
      return Buffer.concat([data.subarray(0, at), data.subarray(at + this.mark.length)]);
    }
    // The longest tail that is the mark's beginning: it starts with NUL, the mark's first byte.
    for (let i = Math.max(0, data.length - this.mark.length + 1); i < data.length; i++) {
      if (data[i] === this.mark[0] && this.mark.subarray(0, data.length - i).equals(data.subarray(i))) {
        this.tail = Buffer.from(data.subarray(i));
        return data.subarray(0, i);
      }
    }
    return data;
  }

  /** What waited as a possible start of the mark, given up on: it is output (empty if none). */
  release(): Buffer {
    const tail = this.tail ?? Buffer.alloc(0);
    this.tail = undefined;
    return tail;
  }
}

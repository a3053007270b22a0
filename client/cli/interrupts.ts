/**
 * Without a TTY, Ctrl-C (SIGINT) is the remote command's: each one is delivered to it. A user
 * pressing it again and again wants out, the command not answering: that many within the window
 * end the session instead. Presses further apart are each the command's, however many there are
 * over a long session (a REPL run with -T).
 */
export const INTERRUPTS_TO_QUIT = 3;
export const INTERRUPT_WINDOW_MS = 2_000;

export class InterruptCounter {
  private readonly times: number[] = [];

  /** Counts one press; true when it is the one that ends the session. */
  press(now = Date.now()): boolean {
    this.times.push(now);
    while (this.times.length > 0 && now - this.times[0]! > INTERRUPT_WINDOW_MS) this.times.shift();
    return this.times.length >= INTERRUPTS_TO_QUIT;
  }
}

/**
 * Without a TTY, SIGTERM is the remote command's too, but `enter` must still stop when asked:
 * `timeout`, systemd and CI runners send one and wait. A command that has not ended this long
 * after it (as `docker stop` waits before its SIGKILL), or a second SIGTERM, ends the session,
 * which ends the session's processes.
 */
export const TERM_GRACE_MS = 10_000;

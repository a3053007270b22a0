import { constants as osConstants } from 'node:os';
import { ExecConnection, type ReconnectStatus, type SessionEnd, type Target } from '../protocol/connection.js';
import { EscapeFilter, escapeHelp } from './escape.js';
import { InterruptCounter, TERM_GRACE_MS } from './interrupts.js';
import { OutputSinks } from './output-sinks.js';
import { enterRawMode } from './terminal.js';

export interface ExecCommandOptions {
  broker: string;
  token: string;
  target: Target;
  command: Buffer[];
  tty: boolean;
  user: string;
  workdir: string;
  env: string[];
  /** Container of a multi-container pod; '' = the default. */
  container?: string;
  /** The escape character of interactive sessions (`~`); null: none. */
  escapeChar?: number | null;
  /** Resume the session after a broken connection (default true). */
  resume?: boolean;
  /** Read this process's stdin (default true); false: the command's input ends at once, as with `ssh -n`. */
  stdin?: boolean;
}

/** Why the session ended, for the caller's message: the broker's end, or `~.` typed locally. */
export interface ExecOutcome {
  status: number;
  end: SessionEnd;
  escaped: boolean;
  /** Our stdout or stderr was closed by its reader (`| head`): the session was ended for it. */
  outputClosed: boolean;
  /** Writing our stdout or stderr failed (a full disk): the session was ended for it. */
  outputFailed?: Error;
  /** A signal sent to `enter` (from kill, or a hang-up) ended the session. */
  endedBy?: NodeJS.Signals;
}

/** Exit status for failures before or around the process (ssh uses 255 the same way). */
export const EXIT_CLIENT_FAILURE = 255;
/** Exit status when the reader of our output went away: that of a process killed by SIGPIPE. */
export const EXIT_OUTPUT_CLOSED = 128 + 13;

/**
 * Keyboard input an interactive session queues while the broker does not take it (a reconnect,
 * a process that does not read) before it stops reading the keyboard: four times the
 * connection's own window, so that only a paste of megabytes waits, while `~.` typed into a dead
 * link is read and acted on.
 */
const INTERACTIVE_READ_AHEAD_BYTES = 4 * 1024 * 1024;

/**
 * Runs one session wired to this process's stdio; resolves with the exit status to use.
 * TTY: raw mode, Ctrl-C travels as input, WINCH on start and on resize.
 * No TTY: SIGINT/SIGTERM are sent to the remote processes (one not answered ends the session, see
 * interrupts.ts); stdin EOF is passed on.
 */
export async function runExecCommand(o: ExecCommandOptions): Promise<ExecOutcome> {
  const stdin = process.stdin;
  const stdout = process.stdout;
  // The terminal whose size the remote one takes: stdout's, else stderr's (`enter -t … | tee log`).
  const screen = [stdout, process.stderr].find((s) => s.isTTY);
  const conn = await ExecConnection.open({
    broker: o.broker,
    token: o.token,
    target: o.target,
    resume: o.resume ?? true,
    spec: {
      argv: o.command,
      tty: o.tty,
      user: o.user,
      workdir: o.workdir,
      env: o.env,
      container: o.container ?? '',
      term: process.env['TERM'] || 'xterm-256color',
      cols: o.tty ? screen?.columns || 80 : 0,
      rows: o.tty ? screen?.rows || 24 : 0,
    },
  });
  const reading = o.stdin ?? true;
  let restore = () => {};
  if (o.tty && reading && stdin.isTTY) restore = enterRawMode(stdin);
  try {
    // Output: the broker's process is paused while a local sink is full; a reader that went away
    // (EPIPE) ends the session, as a program writing to a closed pipe is ended by SIGPIPE, and so
    // does a sink that fails (ENOSPC), with an error: output was lost.
    const output = new OutputSinks(conn, () => conn.close(), [stdout, process.stderr]);
    conn.on('stdout', output.writer(stdout));
    // Whether the terminal's cursor is at the start of a line, for a word said after the session.
    let lastOut = 0x0a;
    if (o.tty) conn.on('stdout', (data: Buffer) => data.length > 0 && (lastOut = data[data.length - 1]!));
    conn.on('stderr', output.writer(process.stderr));
    const status = new ReconnectLine(process.stderr, o.tty && Boolean(stdin.isTTY));
    conn.on('reconnecting', (s: ReconnectStatus) => status.show(s));
    conn.on('resumed', () => status.clear());

    // Input, through the escape filter in interactive sessions.
    const escapes = reading && o.tty && stdin.isTTY && o.escapeChar != null ? new EscapeFilter(o.escapeChar) : undefined;
    let escaped = false;
    if (reading) {
      stdin.on('data', (raw: Buffer) => {
        if (escaped) return;
        let chunk = raw;
        if (escapes) {
          const { data, actions } = escapes.feed(raw);
          chunk = data;
          for (const action of actions) {
            if (action === 'help') process.stderr.write(escapeHelp(o.escapeChar!));
            else {
              escaped = true;
              stdout.write('\r\n');
              conn.close();
            }
          }
          if (escaped || chunk.length === 0) return;
        }
        // An interactive session reads on past the window (a keyboard adds little), so that the
        // escape is seen while the link is re-established: `~.` is for a dead link most of all.
        if (!conn.write(chunk) && !(escapes && conn.queuedInput < INTERACTIVE_READ_AHEAD_BYTES)) {
          stdin.pause();
          conn.once('drain', () => stdin.resume());
        }
      });
      stdin.on('end', () => conn.endInput());
      stdin.on('error', () => conn.endInput());
    } else {
      // Not read at all: a loop's `enter … < list` leaves the rest of the list to the loop.
      conn.endInput();
    }

    const onResize = () => screen && conn.resize(screen.columns, screen.rows);
    const signals: Array<[NodeJS.Signals, () => void]> = [];
    let endedBy: NodeJS.Signals | undefined;
    let termTimer: NodeJS.Timeout | undefined;
    const endBy = (sig: NodeJS.Signals) => () => {
      endedBy ??= sig;
      conn.close();
    };
    if (o.tty) {
      screen?.on('resize', onResize);
      onResize();
      // Every signal whose default would end this process with the terminal still raw. Ctrl-C
      // and Ctrl-\ are keys in raw mode; these come from kill.
      for (const sig of ['SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGINT'] as const) signals.push([sig, endBy(sig)]);
    } else {
      const interrupts = new InterruptCounter();
      signals.push(['SIGINT', () => (interrupts.press() ? endBy('SIGINT')() : conn.signal('INT'))]);
      signals.push([
        'SIGTERM',
        () => {
          if (termTimer) return endBy('SIGTERM')();
          conn.signal('TERM');
          termTimer = setTimeout(endBy('SIGTERM'), TERM_GRACE_MS);
        },
      ]);
      signals.push(['SIGQUIT', () => conn.signal('QUIT')]);
      signals.push(['SIGHUP', endBy('SIGHUP')]);
    }
    for (const [sig, fn] of signals) process.on(sig, fn);

    const end: SessionEnd = await conn.done;
    clearTimeout(termTimer);
    status.clear();
    screen?.off('resize', onResize);
    for (const [sig, fn] of signals) process.off(sig, fn);
    stdin.pause();
    restore();
    // Let whatever output is queued reach the terminal before deciding the status.
    await Promise.all([flush(stdout), flush(process.stderr)]);
    // A session that ends with a word from enter rather than an exit status (a stopped container,
    // a signal) often ends at a prompt: the word starts on a line of its own, as ssh's does.
    if (o.tty && process.stderr.isTTY && end.exitCode === undefined && !escaped && lastOut !== 0x0a) process.stderr.write('\n');
    if (output.failure) return { status: EXIT_CLIENT_FAILURE, end, escaped, outputClosed: false, outputFailed: output.failure };
    // Ended here before the command did: the status of a program ended by that signal.
    if (endedBy && end.exitCode === undefined) return { status: 128 + osConstants.signals[endedBy], end, escaped, outputClosed: false, endedBy };
    const outputClosed = output.closed;
    if (outputClosed) return { status: EXIT_OUTPUT_CLOSED, end, escaped, outputClosed };
    if (escaped) return { status: EXIT_CLIENT_FAILURE, end, escaped, outputClosed };
    if (end.exitCode !== undefined) return { status: end.exitCode, end, escaped, outputClosed };
    return { status: EXIT_CLIENT_FAILURE, end, escaped, outputClosed };
  } finally {
    restore();
  }
}

/**
 * One dim line on stderr while the connection is being resumed, rewritten in place on a
 * terminal and removed when the session is back; elsewhere (a log file) printed once per loss.
 */
class ReconnectLine {
  private shown = false;
  private timer: NodeJS.Timeout | undefined;
  private deadline = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    /** Raw mode: a line feed alone does not return the cursor. */
    private readonly raw: boolean,
  ) {}

  show(s: ReconnectStatus): void {
    this.deadline = s.deadline;
    if (!this.out.isTTY) {
      if (!this.shown) this.out.write('enter: connection lost, reconnecting…\n');
      this.shown = true;
      return;
    }
    this.draw();
    this.timer ??= setInterval(() => this.draw(), 1_000);
    this.timer.unref();
  }

  clear(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.shown && this.out.isTTY) this.out.write('\r\x1b[2K');
    this.shown = false;
  }

  private draw(): void {
    const left = Math.max(0, Math.ceil((this.deadline - Date.now()) / 1000));
    // Start on a line of its own, then keep to it: \r and erase-line redraw in place.
    const lead = this.shown ? '\r\x1b[2K' : this.raw ? '\r\n' : '\n';
    this.out.write(`${lead}\x1b[2menter: connection lost, reconnecting (${left} s left)…\x1b[0m`);
    this.shown = true;
  }
}

function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0 || stream.destroyed) resolve();
    else stream.write('', () => resolve());
  });
}

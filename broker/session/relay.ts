import { EntryError } from '../errors.js';
import type { SessionTap } from './observer.js';
import type { EndReason, OutputStream, ProcessSide, TerminalSide } from './types.js';

export interface RelayOptions {
  /** ms between PING messages to the client; 0 disables. */
  pingIntervalMs: number;
  /** No input and no output for this long ends the session (ENTRY_IDLE_TIMEOUT); 0: never. */
  idleTimeoutMs?: number;
  /** The session ends after this long whatever happens (ENTRY_MAX_DURATION); 0: never. */
  maxSessionMs?: number;
  /** Followers of the byte stream (recording, metrics); called before the bytes move on. */
  tap?: SessionTap;
  /** Told as soon as the session's end is decided, before clean-up and the final messages. */
  onEnding?: (reason: EndReason) => void;
  /** Told when a client's signal could not be delivered; the session goes on. */
  onSignalError?: (name: string, err: unknown) => void;
  /** Told when ending the process failed (engine gone, no sh in the image); the session still ends. */
  onTerminateError?: (err: unknown) => void;
  /** Told when the terminal side failed while telling the client the end; the session still ends. */
  onFinishError?: (err: unknown) => void;
}

/**
 * Moves bytes between a terminal side and a process side until one of them ends, honouring
 * backpressure both ways, coalescing resizes, and ends with exactly one reason.
 * Knows neither ws nor Docker.
 */
export class Relay {
  private ended = false;
  private pingTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private maxTimer: NodeJS.Timeout | undefined;
  private lastActivity = Date.now();
  /** Bytes from the client to the process, and from the process to the client. */
  bytesIn = 0;
  bytesOut = 0;
  private readonly done: Promise<EndReason>;
  private resolveDone!: (reason: EndReason) => void;
  private inputPausedByProcess = false;
  private outputPausedByTerminal = false;
  /** The end as told to the terminal side: told once, whether by the end or ahead of it (announce). */
  private finishing: Promise<void> | undefined;

  constructor(
    private readonly terminal: TerminalSide,
    private readonly process: ProcessSide,
    private readonly options: RelayOptions,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  /** Starts relaying; resolves with the reason once the terminal side has been finished. */
  run(): Promise<EndReason> {
    // Stopped before it ran (a drain while the exec was starting): nothing to start.
    if (this.ended) return this.done;
    const { terminal, process } = this;
    // Timers first: starting a side may end the session at once (a client already gone),
    // and the end clears whatever is armed.
    const idle = this.options.idleTimeoutMs ?? 0;
    if (idle > 0) this.armIdle(idle);
    const max = this.options.maxSessionMs ?? 0;
    if (max > 0) {
      this.maxTimer = setTimeout(() => void this.stop(new EntryError('ENTRY_MAX_DURATION')), max);
      this.maxTimer.unref();
    }
    if (this.options.pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => this.terminal.ping(), this.options.pingIntervalMs);
      this.pingTimer.unref();
    }
    terminal.start({
      input: (data) => {
        if (this.ended) return;
        // The byte goes first; the clock, the counters and the taps (audit command lines, the
        // recording) can wait until it is on its way.
        if (!process.write(data) && !this.inputPausedByProcess) {
          this.inputPausedByProcess = true;
          terminal.pauseInput();
        }
        this.lastActivity = Date.now();
        this.bytesIn += data.length;
        this.options.tap?.input?.(data);
      },
      resize: (cols, rows) => {
        if (this.ended) return;
        this.options.tap?.resize?.(cols, rows);
        process.resize(cols, rows);
      },
      inputEnd: () => {
        if (!this.ended) process.endInput();
      },
      signal: (name) => {
        if (this.ended) return;
        const sent = process.signal(name);
        if (sent) sent.catch((err: unknown) => this.options.onSignalError?.(name, err));
      },
      drain: () => {
        if (this.outputPausedByTerminal) {
          this.outputPausedByTerminal = false;
          process.resumeOutput();
        }
      },
      gone: (error) => {
        void this.end(error ? { kind: 'failed', error } : { kind: 'client-gone' }, true);
      },
    });
    process.start({
      output: (stream: OutputStream, data, headroom) => {
        if (this.ended) return;
        if (!terminal.send(stream, data, headroom) && !this.outputPausedByTerminal) {
          this.outputPausedByTerminal = true;
          process.pauseOutput();
        }
        this.lastActivity = Date.now();
        this.bytesOut += data.length;
        // Recorded once the frame is written: the terminal sends the frames of a turn when its
        // socket is uncorked (process.nextTick), and a microtask runs after that. Framing writes
        // only into the headroom before `data`, so the recorder still sees the bytes as they came.
        const tap = this.options.tap?.output;
        if (tap) queueMicrotask(() => tap(stream, data));
      },
      drain: () => {
        if (this.inputPausedByProcess) {
          this.inputPausedByProcess = false;
          terminal.resumeInput();
        }
      },
      end: (result) => {
        if ('exitCode' in result) {
          void this.end({ kind: 'exited', exitCode: result.exitCode }, false);
          return;
        }
        // No exit status: the stream was lost (an engine link dropped, a proxy timed out, the
        // engine restarted) and the processes may still run, since neither Docker nor Kubernetes
        // ends them with the stream. End them; only a stopped container has nothing left to end.
        void this.end({ kind: 'failed', error: result.error }, result.error.code !== 'ENTRY_CONTAINER_GONE');
      },
    });
    return this.done;
  }

  private armIdle(idleMs: number): void {
    const due = this.lastActivity + idleMs - Date.now();
    this.idleTimer = setTimeout(() => {
      if (this.ended) return;
      if (Date.now() - this.lastActivity >= idleMs) void this.stop(new EntryError('ENTRY_IDLE_TIMEOUT'));
      else this.armIdle(idleMs);
    }, Math.max(due, 1));
    this.idleTimer.unref();
  }

  /** Ends the session from outside (kick, drain, timeout): processes are terminated. */
  stop(error: EntryError): Promise<EndReason> {
    void this.end({ kind: 'failed', error }, true);
    return this.done;
  }

  /**
   * Tells the client now that the session ends with `error`, without waiting for its processes
   * to be ended first: the broker is exiting, and what is left of them is the ledger's. The end
   * that follows (if there is time for it) tells nothing more. Resolves as `finish` does.
   */
  announce(error: EntryError): Promise<void> {
    return this.finish({ kind: 'failed', error });
  }

  private finish(reason: EndReason): Promise<void> {
    this.finishing ??= this.terminal.finish(reason).catch((err: unknown) => this.options.onFinishError?.(err));
    return this.finishing;
  }

  private async end(reason: EndReason, terminateProcess: boolean): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.maxTimer);
    this.options.onEnding?.(reason);
    try {
      // The process outlives its stream: end it ourselves unless it exited or its container stopped.
      // Pings go on meanwhile (up to --kill-grace): a client watching for silence would take the
      // wait for a dead link.
      if (terminateProcess) await this.process.terminate();
    } catch (err) {
      this.options.onTerminateError?.(err);
    } finally {
      clearInterval(this.pingTimer);
      await this.finish(reason);
      this.resolveDone(reason);
    }
  }
}

export function describeEnd(reason: EndReason): string {
  switch (reason.kind) {
    case 'exited':
      return `exited with code ${reason.exitCode}`;
    case 'client-gone':
      return 'client disconnected';
    case 'failed':
      return reason.error.message;
  }
}

export { EntryError };

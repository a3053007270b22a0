import { EntryError } from '../errors.js';
import type { EndReason, OutputStream, ProcessSide, TerminalSide } from './types.js';

export interface RelayOptions {
  /** ms between PING messages to the client; 0 disables. */
  pingIntervalMs: number;
  /** Told when ending the process failed (engine gone, no sh in the image); the session still ends. */
  onTerminateError?: (err: unknown) => void;
}

/**
 * Moves bytes between a terminal side and a process side until one of them ends, honouring
 * backpressure both ways, coalescing resizes, and ends with exactly one reason.
 * Knows neither ws nor Docker.
 */
export class Relay {
  private ended = false;
  private pingTimer: NodeJS.Timeout | undefined;
  private readonly done: Promise<EndReason>;
  private resolveDone!: (reason: EndReason) => void;
  private inputPausedByProcess = false;
  private outputPausedByTerminal = false;

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
    terminal.start({
      input: (data) => {
        if (this.ended) return;
        if (!process.write(data) && !this.inputPausedByProcess) {
          this.inputPausedByProcess = true;
          terminal.pauseInput();
        }
      },
      resize: (cols, rows) => {
        if (!this.ended) process.resize(cols, rows);
      },
      inputEnd: () => {
        if (!this.ended) process.endInput();
      },
      signal: (name) => {
        if (!this.ended) process.signal(name);
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
      output: (stream: OutputStream, data) => {
        if (this.ended) return;
        if (!terminal.send(stream, data) && !this.outputPausedByTerminal) {
          this.outputPausedByTerminal = true;
          process.pauseOutput();
        }
      },
      drain: () => {
        if (this.inputPausedByProcess) {
          this.inputPausedByProcess = false;
          terminal.resumeInput();
        }
      },
      end: (result) => {
        void this.end('exitCode' in result ? { kind: 'exited', exitCode: result.exitCode } : { kind: 'failed', error: result.error }, false);
      },
    });
    if (this.options.pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => terminal.ping(), this.options.pingIntervalMs);
      this.pingTimer.unref();
    }
    return this.done;
  }

  /** Ends the session from outside (kick, drain, timeout): processes are terminated. */
  stop(error: EntryError): Promise<EndReason> {
    void this.end({ kind: 'failed', error }, true);
    return this.done;
  }

  private async end(reason: EndReason, terminateProcess: boolean): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.pingTimer);
    try {
      // The process outlives its stream in Docker: end it ourselves unless it already exited.
      if (terminateProcess) await this.process.terminate();
    } catch (err) {
      this.options.onTerminateError?.(err);
    } finally {
      await this.terminal.finish(reason).catch(() => undefined);
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

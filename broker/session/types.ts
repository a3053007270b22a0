import type { EntryError } from '../errors.js';

/** How a session ended. Exactly one per session. */
export type EndReason =
  | { kind: 'exited'; exitCode: number }
  | { kind: 'client-gone' }
  | { kind: 'failed'; error: EntryError };

export type OutputStream = 'stdout' | 'stderr';

/** Events from the process side, delivered to the relay. */
export interface ProcessEvents {
  /** `headroom`: bytes just before `data` in its buffer that the receiver may overwrite (framing in place). */
  output(stream: OutputStream, data: Uint8Array, headroom?: number): void;
  /** stdin accepts writes again after `write` returned false. */
  drain(): void;
  /** The output stream ended; exitCode is known, or the error says why it is not. */
  end(result: { exitCode: number } | { error: EntryError }): void;
}

/** A running process (a Docker exec, or a test double): the relay's view of it. */
export interface ProcessSide {
  start(events: ProcessEvents): void;
  /** Writes to stdin; false means congested: stop until `drain`. */
  write(data: Uint8Array): boolean;
  endInput(): void;
  resize(cols: number, rows: number): void;
  /** Delivers a signal to every process of the session; rejects when it could not. */
  signal(name: string): Promise<void> | void;
  pauseOutput(): void;
  resumeOutput(): void;
  /** Ends the process and everything it started, because the session ends without it. */
  terminate(): Promise<void>;
}

/** Events from the terminal side (the client), delivered to the relay. */
export interface TerminalEvents {
  input(data: Uint8Array): void;
  resize(cols: number, rows: number): void;
  inputEnd(): void;
  signal(name: string): void;
  /** The client can take more output after `send` returned false. */
  drain(): void;
  /** The client went away, or broke the protocol (error set). */
  gone(error?: EntryError): void;
}

/** The client end of a session (a WebSocket, or a test pipe): the relay's view of it. */
export interface TerminalSide {
  start(events: TerminalEvents): void;
  /** Sends output; false means the client is congested: stop until `drain`. `headroom` as in ProcessEvents.output. */
  send(stream: OutputStream, data: Uint8Array, headroom?: number): boolean;
  ping(): void;
  pauseInput(): void;
  resumeInput(): void;
  /** Sends the ending (exit code, CLOSE reason) after all output, and closes. */
  finish(reason: EndReason): Promise<void>;
}

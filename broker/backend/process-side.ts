import type { EntryError } from '../errors.js';

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

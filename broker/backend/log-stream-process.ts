import { EntryError } from '../errors.js';
import type { OutputStream, ProcessEvents, ProcessSide } from './process-side.js';

/** A target's own output as a readable stream (a container or pod log, following). */
export interface LogStream {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'close' | 'error', listener: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
  destroy(): unknown;
}

/** Why a log stream ended: the target stopped, or the link to its engine went. */
export type LogEndReason = () => Promise<EntryError>;

const targetStopped: LogEndReason = async () => new EntryError('ENTRY_CONTAINER_GONE');

/**
 * A target's own output as a read-only process side: what /attach relays, for any backend.
 * Input, resizes and signals are ignored; output is paused and resumed with the client. It ends
 * when the stream ends, which the engine does when the target stops, and a broken link does
 * too: `endReason` tells which (by default, ENTRY_CONTAINER_GONE). `split` turns the stream's
 * chunks into stdout and stderr (Docker's multiplexed logs), or leaves them all stdout.
 */
export class LogStreamProcess implements ProcessSide {
  private events: ProcessEvents | undefined;
  private ended = false;
  private terminated = false;

  constructor(
    private readonly stream: LogStream,
    private readonly split?: (emit: (stream: OutputStream, data: Uint8Array) => void) => (chunk: Buffer) => void,
    private readonly endReason: LogEndReason = targetStopped,
  ) {
    // Nothing is read until the relay starts: the first lines are not lost.
    stream.pause();
  }

  start(events: ProcessEvents): void {
    this.events = events;
    const emit = (s: OutputStream, d: Uint8Array) => events.output(s, d);
    this.stream.on('data', this.split ? this.split(emit) : (c: Buffer) => emit('stdout', c));
    const end = () => this.end();
    this.stream.on('end', end);
    this.stream.on('close', end);
    this.stream.on('error', end);
    this.stream.resume();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    void this.endReason().then((error) => {
      if (!this.terminated) this.events?.end({ error });
    });
  }

  write(): boolean {
    return true;
  }

  endInput(): void {}

  resize(): void {}

  signal(): void {}

  pauseOutput(): void {
    this.stream.pause();
  }

  resumeOutput(): void {
    this.stream.resume();
  }

  async terminate(): Promise<void> {
    this.ended = true;
    this.terminated = true;
    this.stream.destroy();
  }
}

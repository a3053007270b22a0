/** What output is read from: paused while a local sink is full. */
export interface PausableSource {
  pause(): void;
  resume(): void;
}

/**
 * This process's stdout and stderr as the sinks of output read from the broker. Reading stops
 * while a sink is full (one pending 'drain' per sink) and resumes once every sink has drained.
 * A reader that went away (EPIPE, `… | head`) wants no more, and a sink that fails (a full disk)
 * can take no more: `onClosed` is told once, nothing more is written, and reading resumes so
 * that the broker's answer to what `onClosed` does can get in.
 */
export class OutputSinks {
  /** A sink can take no more: its reader went away, or it failed (see `failure`). */
  closed = false;
  /** Why a sink failed, other than its reader going away: output was lost, which is an error. */
  failure: Error | undefined;
  private blocked = 0;

  constructor(
    private readonly source: PausableSource,
    private readonly onClosed: () => void,
    sinks: readonly NodeJS.WritableStream[],
  ) {
    for (const sink of sinks) sink.on('error', this.onError);
  }

  /** Writes to `sink`, pausing the source while it is full. */
  writer(sink: NodeJS.WritableStream): (data: Uint8Array) => void {
    let waiting = false;
    const drained = () => {
      waiting = false;
      if (this.closed) return;
      if (--this.blocked === 0) this.source.resume();
    };
    return (data) => {
      if (this.closed) return;
      if (!sink.write(data) && !waiting) {
        waiting = true;
        if (this.blocked++ === 0) this.source.pause();
        sink.once('drain', drained);
      }
    };
  }

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    if (this.closed) return;
    this.closed = true;
    if (err.code !== 'EPIPE') this.failure = err;
    this.onClosed();
    if (this.blocked > 0) {
      this.blocked = 0;
      this.source.resume();
    }
  };
}

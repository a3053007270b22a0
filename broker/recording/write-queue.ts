import type { FileHandle } from 'node:fs/promises';

/**
 * Most buffers handed to the OS in one call (16 × 64 KiB = 1 MiB). Buffers that wait while a
 * write runs go in the next call together: on a busy machine a fast session's writes fall
 * behind, and 1,600 buffers of 64 KiB in `writev`s of 8 cost half the CPU of one write each.
 */
export const MAX_BATCH = 16;

/**
 * Writes buffers to a file in order, at most one call in flight, the buffers that queue behind
 * it batched into the next. `done` gets each buffer back once the OS is done with it (written or
 * failed). A failed call goes to `onError` once, its whole batch is lost, and the queue goes on
 * with the next. Neither callback may throw.
 */
export class WriteQueue {
  private readonly queue: { buf: Buffer; length: number }[] = [];
  private running: Promise<void> | undefined;
  private queuedBytes = 0;

  constructor(
    private readonly file: FileHandle,
    private readonly done: (buf: Buffer) => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Bytes handed to `push` that the OS has not finished with. */
  get inFlight(): number {
    return this.queuedBytes;
  }

  push(buf: Buffer, length: number): void {
    this.queue.push({ buf, length });
    this.queuedBytes += length;
    this.running ??= this.run();
  }

  /** Resolves once everything pushed so far is written (or has failed). */
  async drained(): Promise<void> {
    while (this.running) await this.running;
  }

  private async run(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      let bytes = 0;
      for (const b of batch) bytes += b.length;
      try {
        await writeAll(this.file, batch.map((b) => (b.length === b.buf.length ? b.buf : b.buf.subarray(0, b.length))));
      } catch (err) {
        this.onError(err);
      }
      this.queuedBytes -= bytes;
      for (const b of batch) this.done(b.buf);
    }
    this.running = undefined;
  }
}

/** Writes every byte of `views`, in order, going on after a short write. */
async function writeAll(file: FileHandle, views: Buffer[]): Promise<void> {
  let rest = views;
  while (rest.length > 0) {
    let n = (await file.writev(rest)).bytesWritten;
    let i = 0;
    while (i < rest.length && n >= rest[i]!.length) n -= rest[i++]!.length;
    rest = i < rest.length && n > 0 ? [rest[i]!.subarray(n), ...rest.slice(i + 1)] : rest.slice(i);
  }
}

import type { FileHandle } from 'node:fs/promises';

/**
 * Most buffers handed to the OS in one call (16 × 64 KiB = 1 MiB). Buffers that wait while a
 * write runs go in the next call together: on a busy machine a fast session's writes fall
 * behind, and 1,600 buffers of 64 KiB in `writev`s of 8 cost half the CPU of one write each.
 */
export const MAX_BATCH = 16;

/** Bytes handed to every queue that the OS has not finished with, broker-wide. */
let allInFlight = 0;

/** Bytes waiting for the disk in every recording of this broker. */
export function allBytesInFlight(): number {
  return allInFlight;
}

/**
 * Counts bytes a recording holds for the disk outside any queue (its events while its file is
 * being opened; negative once they are handed on), so that they share the broker-wide cap.
 */
export function holdForDisk(bytes: number): void {
  allInFlight += bytes;
}

/**
 * Writes newline-separated lines to a file in order, at most one call in flight, the buffers
 * that queue behind it batched into the next. `done` gets each buffer back once the OS is done
 * with it (written, failed or dropped).
 *
 * The first call that fails (a full disk, an I/O error) ends the file: it is cut back to its last
 * whole line, which a batch may have ended in the middle of, everything queued is dropped, and
 * `onError` is told once; it may hand over a last line with `finalLine`, which is written there
 * if it can be, else tried again at `end`. A file of whole lines stays readable; writing on after
 * a failure would leave a line cut in two in its middle. Neither callback may throw.
 */
export class WriteQueue {
  private readonly queue: { buf: Buffer; length: number }[] = [];
  private running: Promise<void> | undefined;
  private queuedBytes = 0;
  /** Where the next write goes: writes are positioned, so a cut-back file is written on at its end. */
  private position = 0;
  /** The file's length up to and with the last newline written. */
  private wholeLines = 0;
  private failed = false;
  private last: Buffer | undefined;

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
    if (this.failed) {
      this.done(buf);
      return;
    }
    this.queue.push({ buf, length });
    this.queuedBytes += length;
    allInFlight += length;
    this.running ??= this.run();
  }

  /** After a failure, from `onError`: a line to end the file with (a marker saying why). */
  finalLine(line: Buffer): void {
    this.last = line;
  }

  /** Resolves once everything pushed so far is written (or has failed). */
  async drained(): Promise<void> {
    while (this.running) await this.running;
  }

  private async run(): Promise<void> {
    while (this.queue.length > 0 && !this.failed) {
      const batch = this.queue.splice(0, MAX_BATCH);
      const views = batch.map((b) => (b.length === b.buf.length ? b.buf : b.buf.subarray(0, b.length)));
      try {
        await this.writeAll(views);
      } catch (err) {
        await this.fail(err);
      }
      for (const b of [...batch, ...(this.failed ? this.queue.splice(0) : [])]) {
        this.queuedBytes -= b.length;
        allInFlight -= b.length;
        this.done(b.buf);
      }
    }
    this.running = undefined;
  }

  private async fail(err: unknown): Promise<void> {
    this.failed = true;
    await this.cutBack();
    this.onError(err);
    await this.writeFinalLine();
  }

  /**
   * Resolves once everything pushed is written or dropped; after a failure, tries once more to
   * write the final line, which a disk full at the time of the failure may now have room for.
   */
  async end(): Promise<void> {
    await this.drained();
    await this.writeFinalLine();
  }

  private async writeFinalLine(): Promise<void> {
    const last = this.last;
    // Before the first whole line (a file's header) there is nothing for a last line to end.
    if (!last || this.wholeLines === 0) return;
    try {
      await this.writeAll([last]);
      this.last = undefined;
    } catch {
      await this.cutBack();
    }
  }

  /** Cuts the file back to its last whole line (a failed call may have written part of one). */
  private async cutBack(): Promise<void> {
    this.position = this.wholeLines;
    // Shrinking needs no space; should it fail all the same, what follows the last line stays.
    await this.file.truncate(this.wholeLines).catch(() => undefined);
  }

  /** Moves `wholeLines` to just after the last newline of `written`, which ends at `position`. */
  private noteLines(written: Buffer[]): void {
    let end = this.position;
    for (let i = written.length - 1; i >= 0; i--) {
      const nl = written[i]!.lastIndexOf(0x0a);
      if (nl >= 0) {
        this.wholeLines = end - written[i]!.length + nl + 1;
        return;
      }
      end -= written[i]!.length;
    }
  }

  /** Writes every byte of `views` at `position`, in order, going on after a short write. */
  private async writeAll(views: Buffer[]): Promise<void> {
    let rest = views;
    while (rest.length > 0) {
      const n = (await this.file.writev(rest, this.position)).bytesWritten;
      // A short write may end in any line: what it did write counts.
      const written: Buffer[] = [];
      let left = n;
      let i = 0;
      while (i < rest.length && left >= rest[i]!.length) {
        written.push(rest[i]!);
        left -= rest[i++]!.length;
      }
      if (i < rest.length && left > 0) {
        written.push(rest[i]!.subarray(0, left));
        rest = [rest[i]!.subarray(left), ...rest.slice(i + 1)];
      } else {
        rest = rest.slice(i);
      }
      this.position += n;
      this.noteLines(written);
    }
  }
}

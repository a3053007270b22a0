import { type FileHandle, open } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import type { OutputStream } from '../session/types.js';
import { giveBack, jsonLength, MAX_ALL_IN_FLIGHT_BYTES, MAX_IN_FLIGHT_BYTES, PendingBytes } from './pending-bytes.js';
import { allBytesInFlight, WriteQueue } from './write-queue.js';
import { FlushTick } from './flush-tick.js';
import { completeEnd, leadingContinuations, looksBinary } from './text-or-binary.js';

export interface CastHeader {
  width: number;
  height: number;
  /** Unix seconds. */
  timestamp: number;
  command?: string;
  title?: string;
  env: Record<string, string>;
}

/** Pending events are handed to the OS at least this often: a crash loses at most this much. */
export const FLUSH_INTERVAL_MS = 500;
const flushTick = new FlushTick(FLUSH_INTERVAL_MS);
type TextSource = 'stdout' | 'stderr' | 'input';

/**
 * Writes one asciicast v2 file as the session goes: `[t, "o", text]` output, `[t, "r",
 * "COLSxROWS"]` resizes, `[t, "i", text]` input when enabled, `[t, "m", label]` markers, and
 * `[t, "e", text]` for the stderr of non-TTY runs (an Entry addition that players skip; `enter
 * replay` prints it on stderr). Each line is what `JSON.stringify` makes of the text that a
 * UTF-8 decoder reads from the bytes, per stream and across chunks; valid UTF-8 goes into the
 * line as bytes, without becoming a string (see `PendingBytes`).
 */
export class AsciicastWriter {
  private readonly pending = new PendingBytes((buf, length) => this.write(buf, length));
  private readonly queue: WriteQueue;
  private written = 0;
  private capped = false;
  private closed = false;
  private skipped = 0;
  private binaryBytes = 0;
  /** Per stream, the start of a character that the last chunk cut (at most 3 bytes). */
  private readonly cut: Record<TextSource, Buffer | undefined> = { stdout: undefined, stderr: undefined, input: undefined };

  private constructor(
    private readonly file: FileHandle,
    private readonly start: number,
    private readonly maxBytes: number,
    private readonly onError: (err: unknown) => void,
  ) {
    this.queue = new WriteQueue(file, giveBack, (err) => this.writeFailed(err));
  }

  static async create(path: string, header: CastHeader, maxBytes: number, onError: (err: unknown) => void): Promise<AsciicastWriter> {
    const file = await open(path, 'wx', 0o640);
    const w = new AsciicastWriter(file, Date.now(), maxBytes, onError);
    w.pending.text(`${JSON.stringify({ version: 2, ...header })}\n`);
    w.flush();
    return w;
  }

  /**
   * Terminal output is recorded as text. Output that is not text (NUL bytes, invalid UTF-8:
   * a tarball through `cat`) is counted, not stored: as JSON it would replay as noise at
   * several times its size. A marker gives its length.
   */
  output(stream: OutputStream, data: Uint8Array): void {
    if (this.capped || this.closed) return;
    if (looksBinary(data)) {
      this.binaryBytes += data.length;
      return;
    }
    this.noteBinary();
    this.text(stream, stream === 'stderr' ? 'e' : 'o', data, true);
  }

  input(data: Uint8Array): void {
    if (this.capped || this.closed) return;
    this.text('input', 'i', data, false);
  }

  resize(cols: number, rows: number): void {
    this.event('r', `${cols}x${rows}`);
  }

  marker(label: string): void {
    this.event('m', label);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.noteBinary();
    this.noteSkipped(this.elapsed());
    this.flush();
    this.closed = true;
    await this.queue.end();
    await this.file.close().catch(this.onError);
  }

  private noteBinary(): void {
    if (this.binaryBytes === 0) return;
    const n = this.binaryBytes;
    this.binaryBytes = 0;
    this.event('m', `entry: ${n} bytes of binary output`);
  }

  /**
   * Before `start` are the continuation bytes of a character cut by the last chunk, from `end`
   * the start of one this chunk cuts. `checked`: output that `looksBinary` found to be text,
   * which is valid UTF-8 between the two.
   */
  private text(source: TextSource, code: string, data: Uint8Array, checked: boolean): void {
    const start = leadingContinuations(data);
    const end = completeEnd(data, start);
    const valid = checked || isUtf8(data.subarray(start, end));
    const before = this.cut[source];
    const head = before ? joinCut(before, data, start) : start === 0 ? EMPTY : undefined;
    if (valid && head) {
      this.cut[source] = end < data.length ? Buffer.from(data.subarray(end)) : undefined;
      if (head.length > 0 || end > start) this.bytesEvent(code, head, data, start, end);
      return;
    }
    // Invalid sequences or an orphaned character end: as a UTF-8 decoder reads them, U+FFFD for each.
    const all = before ? Buffer.concat([before, data]) : Buffer.from(data.buffer, data.byteOffset, data.length);
    const whole = completeEnd(all);
    this.cut[source] = whole < all.length ? Buffer.from(all.subarray(whole)) : undefined;
    const text = all.toString('utf8', 0, whole);
    if (text) this.event(code, text);
  }

  private bytesEvent(code: string, head: Uint8Array, data: Uint8Array, from: number, to: number): void {
    const frame = this.open(code);
    if (frame === undefined) return;
    const most = frame.length + 3 + 6 * (head.length + to - from);
    if (this.written + this.pending.length + most > this.maxBytes) {
      const exact = frame.length + 3 + jsonLength(head, 0, head.length) + jsonLength(data, from, to);
      if (this.written + this.pending.length + exact > this.maxBytes) return this.cap(frame);
    }
    this.pending.ascii(frame);
    this.pending.json(head, 0, head.length);
    this.pending.json(data, from, to);
    this.pending.ascii('"]\n');
    this.scheduled();
  }

  private event(code: string, text: string): void {
    const frame = this.open(code);
    if (frame === undefined) return;
    const line = `${frame}${JSON.stringify(text).slice(1)}]\n`;
    if (this.written + this.pending.length + Buffer.byteLength(line) > this.maxBytes) return this.cap(frame);
    this.pending.text(line);
    this.scheduled();
  }

  /** The start of an event's line up to its text's opening quote, or undefined to drop the event. */
  private open(code: string): string | undefined {
    if (this.closed || this.capped) return undefined;
    const t = this.elapsed();
    if (this.queue.inFlight + this.pending.length > MAX_IN_FLIGHT_BYTES || allBytesInFlight() > MAX_ALL_IN_FLIGHT_BYTES) {
      this.skipped++;
      return undefined;
    }
    this.noteSkipped(t);
    return `[${t}, "${code}", "`;
  }

  /** How many events were dropped for a slow disk: said at the next event, or at the end. */
  private noteSkipped(t: string): void {
    if (this.skipped === 0) return;
    const n = this.skipped;
    this.skipped = 0;
    this.pending.ascii(`[${t}, "m", "entry: ${n} events skipped: the disk was too slow"]\n`);
  }

  /** Seconds since the start, as the cast's lines give them. */
  private elapsed(): string {
    return ((Date.now() - this.start) / 1000).toFixed(6);
  }

  /**
   * The disk refused a write (full, failing): the recording ends at its last whole line, with a
   * marker saying why when there is room for it, and the session goes on unrecorded.
   */
  private writeFailed(err: unknown): void {
    this.capped = true;
    this.onError(err);
    const why = (err as NodeJS.ErrnoException).code ?? 'a write failed';
    this.queue.finalLine(Buffer.from(`[${this.elapsed()}, "m", ${JSON.stringify(`entry: recording stopped: ${why}`)}]\n`));
  }

  private cap(frame: string): void {
    this.capped = true;
    this.pending.ascii(`${frame.slice(0, frame.indexOf(','))}, "m", "entry: recording size limit reached"]\n`);
    this.flush();
  }

  private scheduled(): void {
    if (this.pending.length > 0) flushTick.join(this.flushOnTick);
  }

  private readonly flushOnTick = (): void => this.flush();

  private flush(): void {
    flushTick.leave(this.flushOnTick);
    if (this.closed) return;
    this.pending.flush();
  }

  private write(buf: Buffer, length: number): void {
    this.written += length;
    this.queue.push(buf, length);
  }
}

const EMPTY = new Uint8Array(0);

/**
 * The character that `before` began, completed from the start of `data` when the chunk holds
 * exactly its missing continuation bytes, and only then (else undefined: a decoder's case).
 */
function joinCut(before: Buffer, data: Uint8Array, start: number): Uint8Array | undefined {
  const joined = Buffer.concat([before, data.subarray(0, start)]);
  return completeEnd(joined) === joined.length && isUtf8(joined) ? joined : undefined;
}

import { type FileHandle, open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import type { OutputStream } from '../session/types.js';
import { looksBinary } from './text-or-binary.js';

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
/** …or as soon as this much is pending. */
const FLUSH_BYTES = 64 * 1024;
/**
 * Most text waiting for the disk. Beyond it events are dropped (and a marker says so) rather
 * than held: a slow disk must neither slow the session nor grow the broker's memory.
 */
const MAX_IN_FLIGHT_BYTES = 4 * 1024 * 1024;

/**
 * Writes one asciicast v2 file as the session goes: `[t, "o", text]` output, `[t, "r",
 * "COLSxROWS"]` resizes, `[t, "i", text]` input when enabled, `[t, "m", label]` markers, and
 * `[t, "e", text]` for the stderr of non-TTY runs (an Entry addition that players skip; `enter
 * replay` prints it on stderr). Output bytes are decoded as UTF-8 per stream, across chunks.
 */
export class AsciicastWriter {
  private pending: string[] = [];
  private pendingBytes = 0;
  private written = 0;
  private capped = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private skipped = 0;
  private binaryBytes = 0;
  // StringDecoder: streaming (keeps a character split across chunks) and fast on any input.
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8'), input: new StringDecoder('utf8') };

  private constructor(
    private readonly file: FileHandle,
    private readonly start: number,
    private readonly maxBytes: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  static async create(path: string, header: CastHeader, maxBytes: number, onError: (err: unknown) => void): Promise<AsciicastWriter> {
    const file = await open(path, 'wx', 0o640);
    const w = new AsciicastWriter(file, Date.now(), maxBytes, onError);
    w.line(JSON.stringify({ version: 2, ...header }));
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
    const text = this.decoders[stream].write(data as Buffer);
    if (text) this.event(stream === 'stderr' ? 'e' : 'o', text);
  }

  input(data: Uint8Array): void {
    if (this.capped || this.closed) return;
    const text = this.decoders.input.write(data as Buffer);
    if (text) this.event('i', text);
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
    this.flush();
    this.closed = true;
    clearTimeout(this.timer);
    await this.chain;
    await this.file.close().catch(this.onError);
  }

  private noteBinary(): void {
    if (this.binaryBytes === 0) return;
    const n = this.binaryBytes;
    this.binaryBytes = 0;
    this.event('m', `entry: ${n} bytes of binary output`);
  }

  private event(code: string, text: string): void {
    if (this.closed || this.capped) return;
    const t = ((Date.now() - this.start) / 1000).toFixed(6);
    if (this.inFlight + this.pendingBytes > MAX_IN_FLIGHT_BYTES) {
      this.skipped++;
      return;
    }
    if (this.skipped > 0) {
      const n = this.skipped;
      this.skipped = 0;
      this.line(`[${t}, "m", "entry: ${n} events skipped: the disk was too slow"]`);
    }
    const line = `[${t}, ${JSON.stringify(code)}, ${JSON.stringify(text)}]`;
    if (this.written + this.pendingBytes + line.length > this.maxBytes) {
      this.capped = true;
      this.line(`[${t}, "m", "entry: recording size limit reached"]`);
      this.flush();
      return;
    }
    this.line(line);
  }

  private line(text: string): void {
    this.pending.push(text, '\n');
    this.pendingBytes += text.length + 1;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_INTERVAL_MS);
      this.timer.unref();
    }
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0 || this.closed) return;
    const chunk = this.pending.join('');
    const size = this.pendingBytes;
    this.pending = [];
    this.written += size;
    this.inFlight += size;
    this.pendingBytes = 0;
    // Writes are chained so they land in order; each is handed to the OS when it runs.
    this.chain = this.chain.then(() =>
      this.file.write(chunk).then(
        () => {
          this.inFlight -= size;
        },
        (err: unknown) => {
          this.inFlight -= size;
          this.onError(err);
        },
      ),
    );
  }
}

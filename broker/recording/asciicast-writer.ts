import { type FileHandle, open } from 'node:fs/promises';
import type { OutputStream } from '../session/types.js';

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
  private readonly decoders = { stdout: new TextDecoder(), stderr: new TextDecoder(), input: new TextDecoder() };

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

  output(stream: OutputStream, data: Uint8Array): void {
    const text = this.decoders[stream].decode(data, { stream: true });
    if (text) this.event(stream === 'stderr' ? 'e' : 'o', text);
  }

  input(data: Uint8Array): void {
    const text = this.decoders.input.decode(data, { stream: true });
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
    this.flush();
    this.closed = true;
    clearTimeout(this.timer);
    await this.chain;
    await this.file.close().catch(this.onError);
  }

  private event(code: string, text: string): void {
    if (this.closed || this.capped) return;
    const t = ((Date.now() - this.start) / 1000).toFixed(6);
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
    this.pending = [];
    this.written += this.pendingBytes;
    this.pendingBytes = 0;
    // Writes are chained so they land in order; each is handed to the OS when it runs.
    this.chain = this.chain.then(() => this.file.write(chunk).then(() => undefined, this.onError));
  }
}

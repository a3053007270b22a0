import { ESCAPE, plainEnd } from './json-plain.js';

/**
 * A recording starts each flush period in a buffer this small, and doubles it as its output
 * grows: most sessions type and read a screen at a time, and the buffers of 1,000 of them then
 * take about what their text does (a keystroke's line is ~40 bytes).
 */
export const SMALL_BUFFER_BYTES = 1024;
/**
 * Output that fills a buffer this size hands it to the file and goes on in another: the size of
 * the writes the recording made before, and of a pipe's default buffer.
 */
export const LARGE_BUFFER_BYTES = 64 * 1024;
/**
 * Most text of one recording waiting for the disk. Beyond it events are dropped (and a marker
 * says so) rather than held: a slow disk must neither slow the session nor grow the broker's memory.
 */
export const MAX_IN_FLIGHT_BYTES = 4 * 1024 * 1024;
/**
 * Most text of all recordings together waiting for the disk: when the disk stalls for everyone,
 * a thousand sessions at MAX_IN_FLIGHT_BYTES each would hold 4 GiB. 16 recordings at their own
 * limit fit; past it every recording drops events (and says so) until the disk catches up.
 */
export const MAX_ALL_IN_FLIGHT_BYTES = 64 * 1024 * 1024;
/**
 * Large buffers kept for reuse once written, broker-wide: as many as one recording can have in
 * flight (MAX_IN_FLIGHT_BYTES / LARGE_BUFFER_BYTES = 64, 4 MiB). Reuse is the point: a new buffer
 * per write is external memory, which makes V8 collect sooner, and on a busy machine the writes
 * of a fast session do fall that far behind (with 32 kept, a 1 GiB `cat` round trip spent 405 ms
 * of the broker's 3.6 s in garbage collection; with 64, 123 ms).
 */
const KEPT_LARGE_BUFFERS = MAX_IN_FLIGHT_BYTES / LARGE_BUFFER_BYTES;

const kept: Buffer[] = [];

function takeLarge(): Buffer {
  return kept.pop() ?? Buffer.allocUnsafeSlow(LARGE_BUFFER_BYTES);
}

/** Gives a buffer that `spill` handed out back once its write is done. */
export function giveBack(buf: Buffer): void {
  if (buf.length === LARGE_BUFFER_BYTES && kept.length < KEPT_LARGE_BUFFERS) kept.push(buf);
}

const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** The longest escape (`\u001b`). */
const MAX_ESCAPE = 6;
/** Plain bytes copied one by one before the rest of their run goes in a native copy, which costs more to call. */
const NATIVE_COPY_MIN = 64;

/** How many bytes `json` writes for `src[from, to)`. */
export function jsonLength(src: Uint8Array, from: number, to: number): number {
  let n = to - from;
  for (let i = from; i < to; i++) {
    const e = ESCAPE[src[i]!]!;
    if (e !== 0) n += e === 0x75 ? MAX_ESCAPE - 1 : 1;
  }
  return n;
}

/**
 * The bytes a recording has yet to hand to its file, written straight into buffers: output
 * becomes JSON without a string between (UTF-8 is valid inside a JSON string as it is). Full
 * buffers go to `spill` in order; the one being filled goes on `flush`.
 */
export class PendingBytes {
  private buf: Buffer | undefined;
  private len = 0;

  constructor(private readonly spill: (buf: Buffer, length: number) => void) {}

  get length(): number {
    return this.len;
  }

  flush(): void {
    if (!this.buf || this.len === 0) return;
    const buf = this.buf;
    const len = this.len;
    this.buf = undefined;
    this.len = 0;
    this.spill(buf, len);
  }

  /** Text known to be ASCII (numbers, codes, the line's frame). */
  ascii(text: string): void {
    this.room(text.length, text.length);
    this.len += this.buf!.write(text, this.len, 'latin1');
  }

  /** Any text, encoded as UTF-8. */
  text(text: string): void {
    const n = Buffer.byteLength(text);
    if (n <= LARGE_BUFFER_BYTES) {
      this.room(n, n);
      this.len += this.buf!.write(text, this.len, 'utf8');
    } else this.raw(Buffer.from(text));
  }

  /** Bytes as they are. */
  raw(src: Uint8Array): void {
    for (let i = 0; i < src.length; ) {
      this.room(Math.min(src.length - i, LARGE_BUFFER_BYTES), 1);
      const buf = this.buf!;
      const n = Math.min(src.length - i, buf.length - this.len);
      buf.set(src.subarray(i, i + n), this.len);
      this.len += n;
      i += n;
    }
  }

  /** UTF-8 bytes as the inside of a JSON string. */
  json(src: Uint8Array, from: number, to: number): void {
    let i = from;
    while (i < to) {
      this.room(Math.min(to - i + MAX_ESCAPE, LARGE_BUFFER_BYTES), MAX_ESCAPE);
      const buf = this.buf!;
      // An escape needs up to MAX_ESCAPE bytes; plain bytes fill the buffer to its end.
      const limit = buf.length - MAX_ESCAPE;
      let len = this.len;
      while (i < to && len <= limit) {
        const b = src[i]!;
        const e = ESCAPE[b]!;
        if (e === 0) {
          // Copied as scanned; a run that goes on past NATIVE_COPY_MIN ends in one native copy.
          const runEnd = Math.min(to, i + buf.length - len);
          const copyEnd = Math.min(runEnd, i + NATIVE_COPY_MIN);
          let j = i;
          while (j < copyEnd && ESCAPE[src[j]!] === 0) buf[len++] = src[j++]!;
          if (j === copyEnd && j < runEnd) {
            const k = plainEnd(src, j, runEnd);
            buf.set(src.subarray(j, k), len);
            len += k - j;
            j = k;
          }
          i = j;
          continue;
        }
        buf[len++] = 0x5c;
        buf[len++] = e;
        if (e === 0x75) {
          buf[len++] = 0x30;
          buf[len++] = 0x30;
          buf[len++] = HEX[b >> 4]!;
          buf[len++] = HEX[b & 15]!;
        }
        i++;
      }
      this.len = len;
    }
  }

  /**
   * Makes room for `want` bytes (at most a large buffer's worth) or, short of that, for `need`
   * of them in what is left, spilling a buffer that is full.
   */
  private room(want: number, need: number): void {
    const buf = this.buf;
    if (!buf) {
      this.buf = sized(want);
      return;
    }
    if (buf.length - this.len >= want) return;
    if (buf.length < LARGE_BUFFER_BYTES) {
      // Outgrew a growing buffer: carry what it holds over into one at least twice its size.
      const bigger = sized(Math.max(2 * buf.length, this.len + want));
      buf.copy(bigger, 0, 0, this.len);
      this.buf = bigger;
    }
    if (this.buf!.length - this.len >= need) return;
    this.flush();
    this.buf = takeLarge();
  }
}

/**
 * A buffer for `bytes`: the next power of two from SMALL_BUFFER_BYTES, a kept large one from half
 * of it. Small ones come from Node's shared pool (`allocUnsafe`), not one allocation each.
 */
function sized(bytes: number): Buffer {
  if (bytes > LARGE_BUFFER_BYTES / 2) return takeLarge();
  let size = SMALL_BUFFER_BYTES;
  while (size < bytes) size *= 2;
  return Buffer.allocUnsafe(size);
}

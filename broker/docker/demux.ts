import type { OutputStream } from '../session/types.js';

/** Docker's multiplexed stream header: [stream type, 0, 0, 0, size as uint32 big-endian]. */
const HEADER_BYTES = 8;

/**
 * Splits Docker's multiplexed (non-TTY) output into stdout and stderr, across chunk boundaries.
 *
 * Docker frames output in payloads of up to 32 KiB (16 KiB seen), so one socket read holds
 * several. Within a chunk, consecutive payloads of one stream are joined in place: each is moved
 * down over the spent header before it, and the run is emitted once, as a view into the chunk —
 * no allocation, one frame downstream instead of one per payload. A run that starts behind a
 * spent header is emitted with `headroom` 8: the receiver may write its own framing there
 * instead of copying (a payload continued from the previous chunk is moved up over the header
 * that follows it to make that room). Stream type 0 (stdin) and unknown types count as stdout.
 *
 * `push` rearranges the bytes of the chunk it is given: the caller must not use them after.
 */
export class DockerDemuxer {
  private header = new Uint8Array(HEADER_BYTES);
  private headerFill = 0;
  private remaining = 0;
  private stream: OutputStream = 'stdout';
  // The run being gathered in the current chunk: [runStart, runEnd) holds its bytes so far.
  private runStream: OutputStream | undefined;
  private runStart = 0;
  private runEnd = 0;
  private runHeadroom = 0;

  constructor(private readonly emit: (stream: OutputStream, data: Uint8Array, headroom: number) => void) {}

  push(chunk: Uint8Array): void {
    let pos = 0;
    // Where a header that began in this chunk ended: a payload starting there has headroom.
    let spentHeaderEnd = -1;
    while (pos < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - pos);
        this.add(chunk, pos, take, pos === spentHeaderEnd);
        this.remaining -= take;
        pos += take;
        continue;
      }
      const need = HEADER_BYTES - this.headerFill;
      const whole = need === HEADER_BYTES;
      const take = Math.min(need, chunk.length - pos);
      this.header.set(chunk.subarray(pos, pos + take), this.headerFill);
      this.headerFill += take;
      pos += take;
      if (this.headerFill === HEADER_BYTES) {
        this.headerFill = 0;
        if (whole) spentHeaderEnd = pos;
        this.stream = this.header[0] === 2 ? 'stderr' : 'stdout';
        const h = this.header;
        this.remaining = ((h[4]! << 24) >>> 0) + (h[5]! << 16) + (h[6]! << 8) + h[7]!;
      }
    }
    this.flush(chunk);
  }

  /** True when the stream ended in the middle of a frame (the engine went away). */
  get truncated(): boolean {
    return this.remaining > 0 || this.headerFill > 0;
  }

  /** Adds chunk[at, at + len) of the current stream to the run; `spent`: a whole header lies just before it. */
  private add(chunk: Uint8Array, at: number, len: number, spent: boolean): void {
    if (this.runStream !== undefined && this.runStream !== this.stream) this.flush(chunk);
    if (this.runStream === undefined) {
      this.runStream = this.stream;
      this.runStart = at;
      this.runEnd = at + len;
      this.runHeadroom = spent ? HEADER_BYTES : 0;
      return;
    }
    if (this.runHeadroom === 0 && at - this.runEnd >= HEADER_BYTES) {
      // The run is a payload continued from the previous chunk: move it up over the spent
      // header(s) after it, so that it has room for a frame header before it.
      const shift = at - this.runEnd;
      chunk.copyWithin(this.runStart + shift, this.runStart, this.runEnd);
      this.runStart += shift;
      this.runEnd += shift;
      this.runHeadroom = HEADER_BYTES;
    }
    if (at !== this.runEnd) chunk.copyWithin(this.runEnd, at, at + len);
    this.runEnd += len;
  }

  private flush(chunk: Uint8Array): void {
    if (this.runStream === undefined) return;
    const stream = this.runStream;
    this.runStream = undefined;
    this.emit(stream, chunk.subarray(this.runStart, this.runEnd), this.runHeadroom);
  }
}

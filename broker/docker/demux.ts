import type { OutputStream } from '../session/types.js';

/** Docker's multiplexed stream header: [stream type, 0, 0, 0, size as uint32 big-endian]. */
const HEADER_BYTES = 8;

/**
 * Splits Docker's multiplexed (non-TTY) output into stdout and stderr payloads, across chunk
 * boundaries. Payloads are views into the incoming chunks, not copies. A payload whose header
 * lay whole in the same chunk, just before it, is emitted with `headroom` 8: those header bytes
 * are spent, and the receiver may write its own framing there instead of copying the payload.
 * Stream type 0 (stdin) and unknown types are treated as stdout.
 */
export class DockerDemuxer {
  private header = new Uint8Array(HEADER_BYTES);
  private headerFill = 0;
  private remaining = 0;
  private stream: OutputStream = 'stdout';

  constructor(private readonly emit: (stream: OutputStream, data: Uint8Array, headroom: number) => void) {}

  push(chunk: Uint8Array): void {
    let pos = 0;
    // Where a header that began in this chunk ended: the payload starting there has headroom.
    let spentHeaderEnd = -1;
    while (pos < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - pos);
        this.emit(this.stream, chunk.subarray(pos, pos + take), pos === spentHeaderEnd ? HEADER_BYTES : 0);
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
  }

  /** True when the stream ended in the middle of a frame (the engine went away). */
  get truncated(): boolean {
    return this.remaining > 0 || this.headerFill > 0;
  }
}

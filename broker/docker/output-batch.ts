import type { OutputStream } from '../session/types.js';

/**
 * Joins the payloads one socket read yields for the same stream. Docker frames non-TTY output
 * in pieces of up to 32 KiB with a header between them, so one 64 KiB read holds several; as
 * one message each, they would cost one WebSocket frame and one write system call apiece.
 */
export class OutputBatch {
  private stream: OutputStream | undefined;
  private pieces: Uint8Array[] = [];

  constructor(private readonly emit: (stream: OutputStream, data: Uint8Array) => void) {}

  readonly add = (stream: OutputStream, data: Uint8Array): void => {
    if (this.stream !== stream) this.flush();
    this.stream = stream;
    this.pieces.push(data);
  };

  flush(): void {
    const { stream, pieces } = this;
    if (!stream || pieces.length === 0) return;
    this.pieces = [];
    this.stream = undefined;
    this.emit(stream, pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces));
  }
}

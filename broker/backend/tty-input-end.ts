/** EOT (^D): how a terminal says "end of input". */
const EOT = 0x04;
const LF = 0x0a;
const CR = 0x0d;

/**
 * The end of input of a terminal session, written as a terminal would. The remote side's line
 * discipline turns an EOT into end-of-file only at the start of a line; after unfinished text
 * (`printf abc | enter -t …`) it hands that text to the reader instead, and a second EOT ends
 * the input. What was last written tells which it takes.
 */
export class TtyInputEnd {
  private midLine = false;

  /** Input on its way to the terminal, in order. */
  wrote(data: Uint8Array): void {
    if (data.byteLength === 0) return;
    const last = data[data.byteLength - 1];
    this.midLine = last !== LF && last !== CR && last !== EOT;
  }

  /** The bytes that end the input now: one EOT at the start of a line, two after unfinished text. */
  bytes(): Buffer {
    return Buffer.from(this.midLine ? [EOT, EOT] : [EOT]);
  }
}

import { HELD_CHUNK_COST_BYTES } from '../config/limits.js';

/** The most a message of joined writes holds: a write this big goes as it is. */
export const JOIN_MAX_BYTES = 64 * 1024;

export interface StdinJoinOptions {
  /** The least time from one message to the next (0: none). */
  gapMs: number;
  /** Whether the socket still holds a stdin message it has not written. */
  busy(): boolean;
  send(data: Uint8Array): void;
}

/**
 * Stdin on its way to a pods/exec socket, as few messages as the socket and the pod take. A
 * write goes at once when the socket has written what went before and the gap since the last
 * message has passed; otherwise it waits, copied into one message with whatever else comes
 * meanwhile, up to JOIN_MAX_BYTES. Through the stdin pump each message costs a process in the
 * pod (see exec-command.ts): one-byte frames went one message, and one `dd`, a byte.
 */
export class StdinJoin {
  private buf: Buffer | undefined;
  private length = 0;
  private nextAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly o: StdinJoinOptions) {}

  /** What waits here, counted as the stdin bounds count: its bytes and one chunk's objects. */
  get heldBytes(): number {
    return this.length === 0 ? 0 : this.length + HELD_CHUNK_COST_BYTES;
  }

  write(data: Uint8Array): void {
    if (this.closed || data.byteLength === 0) return;
    if (data.byteLength >= JOIN_MAX_BYTES) {
      // Big enough alone: what waits goes first, then this, without a copy.
      this.flush();
      this.emit(data);
      return;
    }
    if (this.length + data.byteLength > JOIN_MAX_BYTES) this.flush();
    if (this.length === 0 && !this.o.busy() && performance.now() >= this.nextAt) {
      this.emit(data);
      return;
    }
    this.append(data);
    if (this.length >= JOIN_MAX_BYTES) this.flush();
    else this.schedule();
  }

  /** The socket has written a stdin message: what waits behind it may go. */
  written(): void {
    if (this.length > 0) this.schedule();
  }

  /**
   * The command printed since the last message went: most often its answer to it, so that
   * message has been passed on, and what waits goes without sitting out the gap (a script talking
   * to a command line by line waits for none). A command printing all along sends a message a
   * write again, unless they come faster than the socket writes them.
   */
  answered(): void {
    this.nextAt = 0;
    if (this.length > 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.schedule();
    }
  }

  /** Sends what waits now, gap or not (the end of input goes after it). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.length === 0) return;
    const data = this.buf!.subarray(0, this.length);
    this.buf = undefined;
    this.length = 0;
    this.emit(data);
  }

  /** Drops what waits: the exec has ended. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.buf = undefined;
    this.length = 0;
  }

  private emit(data: Uint8Array): void {
    this.nextAt = performance.now() + this.o.gapMs;
    this.o.send(data);
  }

  /** Sends what waits once the socket is free (`written` asks again) and the gap has passed. */
  private schedule(): void {
    if (this.timer || this.o.busy()) return;
    const wait = this.nextAt - performance.now();
    if (wait <= 0) {
      this.flush();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.schedule();
    }, wait);
  }

  private append(data: Uint8Array): void {
    const need = this.length + data.byteLength;
    if (!this.buf || this.buf.length < need) {
      // Grows by doubling: joining N bytes copies about 2N of them, whatever the writes' sizes.
      const next = Buffer.allocUnsafe(Math.max(need, Math.min(JOIN_MAX_BYTES, 2 * (this.buf?.length ?? 128))));
      if (this.buf) this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    this.buf.set(data, this.length);
    this.length = need;
  }
}

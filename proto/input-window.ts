import { dropAcknowledged } from './acknowledged.js';

/**
 * A resumable session's input, on the client's side: what was sent and not yet acknowledged by
 * INPUT_ACK (sent again after a resume), and what waits because the window of input in flight
 * is full. The broker holds about one window while its process takes no input, and reads on
 * for the output acknowledgements; more in flight would have it stop reading, and output and
 * input would wait on each other. Transport-free: the caller sends what `take` returns.
 */
export class InputWindow {
  private unacked: Uint8Array[] = [];
  private unackedCount = 0;
  private waiting: Uint8Array[] = [];
  private waitingCount = 0;
  /** Bytes taken for sending since the start, and acknowledged, as the broker counts them. */
  private sent = 0;
  private ackedAt = 0;

  constructor(private readonly limit: number) {}

  /** Bytes sent and not yet acknowledged. */
  get unackedBytes(): number {
    return this.unackedCount;
  }

  /** Bytes written and not yet taken for sending. */
  get waitingBytes(): number {
    return this.waitingCount;
  }

  /** What was sent and not acknowledged, oldest first: what a resume sends again. */
  get unacknowledged(): readonly Uint8Array[] {
    return this.unacked;
  }

  /** Input to send, after whatever waits already. The chunk is kept as it is (not copied). */
  push(chunk: Uint8Array): void {
    this.waiting.push(chunk);
    this.waitingCount += chunk.length;
  }

  /**
   * What may be sent now, in order: what waits, as far as the window has room, the chunk at its
   * edge cut there. `limit` replaces the window for this call (Infinity: no bound).
   */
  take(limit = this.limit): Uint8Array[] {
    const out: Uint8Array[] = [];
    while (this.waiting.length > 0 && this.unackedCount < limit) {
      const first = this.waiting[0]!;
      const room = limit - this.unackedCount;
      const piece = first.length <= room ? first : first.subarray(0, room);
      if (piece === first) this.waiting.shift();
      else this.waiting[0] = first.subarray(room);
      this.waitingCount -= piece.length;
      this.unacked.push(piece);
      this.unackedCount += piece.length;
      this.sent += piece.length;
      out.push(piece);
    }
    return out;
  }

  /**
   * The broker has passed on `count` bytes since the start. False, changing nothing, for a count
   * already known or past what was sent (a broker gone wrong must not make the window negative).
   */
  acknowledge(count: number): boolean {
    const drop = count - this.ackedAt;
    if (drop <= 0 || count > this.sent) return false;
    this.ackedAt = count;
    this.unackedCount -= drop;
    dropAcknowledged(this.unacked, drop);
    return true;
  }

  /**
   * Back to nothing kept (the broker turned out not to resume, or a new session): what was sent
   * is forgotten, and what waits is returned, for the caller to send as it would have without
   * a window, or drop.
   */
  forget(): Uint8Array[] {
    const waiting = this.waiting;
    this.unacked = [];
    this.waiting = [];
    this.unackedCount = this.waitingCount = this.sent = this.ackedAt = 0;
    return waiting;
  }
}

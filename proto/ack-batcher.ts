/**
 * Counts the bytes one side of a resumable session has received and batches their
 * acknowledgements (OUTPUT_ACK from a client, INPUT_ACK from the broker): one as soon as `bytes`
 * more than the last one have arrived, else one `ms` after the first byte not yet acknowledged.
 * The same count is never sent twice. Platform-free (Node and browsers).
 */
export class AckBatcher {
  private total = 0;
  private acked = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * `send` is given the count to acknowledge and returns false when it cannot send it (no
   * connection): that count goes with the next acknowledgement instead.
   */
  constructor(
    private readonly send: (count: number) => boolean,
    private readonly bytes: number,
    private readonly ms: number,
  ) {}

  /** Bytes received so far. */
  get count(): number {
    return this.total;
  }

  received(n: number): void {
    this.total += n;
    if (this.total - this.acked >= this.bytes) {
      this.flush();
      return;
    }
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => this.flush(), this.ms);
    // In Node a pending acknowledgement must not keep the process alive (a browser's timer is a number).
    (this.timer as unknown as { unref?: () => unknown }).unref?.();
  }

  /** Sends the acknowledgement now if there is something new to acknowledge. */
  flush(): void {
    this.cancel();
    if (this.acked === this.total) return;
    if (this.send(this.total)) this.acked = this.total;
  }

  /** The peer is known to have seen everything up to `count` (a resume told it so). */
  acknowledged(count: number): void {
    this.acked = count;
  }

  /** Drops the pending acknowledgement (its connection is gone). */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Back to nothing received (a new session). */
  reset(): void {
    this.cancel();
    this.total = this.acked = 0;
  }
}

/**
 * Recordings flushed per turn of the event loop on a tick: 64 writes keep the pool's threads
 * awake; 1,000 at once raised the broker's peak RSS by 5 MB (bench README, "one flush timer").
 */
export const FLUSHES_PER_TURN = 64;

/**
 * One timer for every recording's periodic flush. Recordings that have something to write join
 * the next tick and all flush on it: their writes reach libuv's pool in bursts, while its
 * threads are awake, where a timer per recording made each write wake a pool thread alone (on a
 * busy machine ~70 µs of the relay's thread a write; with 500 sessions typing, a fifth of its
 * time). A recording that joins waits at most `intervalMs`.
 */
export class FlushTick {
  private readonly due = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly intervalMs: number) {}

  join(flush: () => void): void {
    this.due.add(flush);
    if (this.timer) return;
    this.timer = setTimeout(this.run, this.intervalMs);
    this.timer.unref();
  }

  leave(flush: () => void): void {
    this.due.delete(flush);
  }

  private readonly run = (): void => {
    this.timer = undefined;
    const due = [...this.due];
    this.due.clear();
    this.flushFrom(due, 0);
  };

  /** FLUSHES_PER_TURN at a time: the relay's work waits for one slice, not for every recording's. */
  private flushFrom(due: Array<() => void>, from: number): void {
    const end = Math.min(due.length, from + FLUSHES_PER_TURN);
    for (let i = from; i < end; i++) due[i]!();
    if (end < due.length) setImmediate(() => this.flushFrom(due, end));
  }
}

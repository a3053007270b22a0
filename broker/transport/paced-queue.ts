/**
 * Work that may wait for a turn of the event loop, run in arrival order with at most
 * `budgetMs` of it per turn. Made for bursts: when a load balancer restarts, a thousand clients
 * drop in one poll of the event loop, and ending each session (its log and audit lines, its
 * recording, its processes) costs ~0.2 ms. Run in one go that is 200 ms in which no other
 * session's keystroke is echoed; paced, the relay's I/O runs between slices.
 */
export class PacedQueue {
  private readonly tasks: Array<() => void> = [];
  private head = 0;
  private scheduled = false;

  constructor(private readonly budgetMs: number) {}

  get pending(): number {
    return this.tasks.length - this.head;
  }

  push(task: () => void): void {
    this.tasks.push(task);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  private readonly run = (): void => {
    const start = performance.now();
    // Tasks are expected not to throw (callers wrap them in their fault boundary); one that does
    // still leaves the rest scheduled.
    try {
      while (this.head < this.tasks.length) {
        const task = this.tasks[this.head]!;
        this.head++;
        task();
        if (performance.now() - start >= this.budgetMs) break;
      }
    } finally {
      if (this.head >= this.tasks.length) {
        this.tasks.length = 0;
        this.head = 0;
        this.scheduled = false;
      } else {
        if (this.head > 1024) {
          this.tasks.splice(0, this.head);
          this.head = 0;
        }
        setImmediate(this.run);
      }
    }
  };
}

/**
 * Session ends after a client's connection closed. 2 ms a turn: a typist's echo waits at most
 * that (plus the turn's own I/O) behind a burst, and 1,000 ends still take well under a second.
 */
export const SESSION_END_BUDGET_MS = 2;
export const sessionEnds = new PacedQueue(SESSION_END_BUDGET_MS);

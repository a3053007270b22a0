/**
 * Authentications under way in this process, by source (as failureSource counts them). Each may
 * yet fail, so each counts towards its source's limit until it is decided: counted only once it
 * failed, parallel attempts all passed the limit check before the first failure was stored.
 */
export class AttemptsInFlight {
  private readonly counts = new Map<string, number>();
  /** Attempts waiting for one of their source's under way to be decided. */
  private readonly waiters = new Map<string, Array<() => void>>();

  count(source: string): number {
    return this.counts.get(source) ?? 0;
  }

  enter(source: string): void {
    this.counts.set(source, this.count(source) + 1);
  }

  /**
   * An attempt that entered steps back undecided (it found no room and will wait): no one is
   * woken, or the waiters, finding no room either, would wake each other for ever.
   */
  withdraw(source: string): void {
    const n = this.count(source) - 1;
    if (n > 0) this.counts.set(source, n);
    else this.counts.delete(source);
  }

  /**
   * One of `source`'s attempts is decided (and a failure counted in the store): the longest
   * waiting looks again, in its place. One, not all: each would ask the store, and all but one
   * would wait again, a round trip per waiter per decision (200 parallel requests: 20,000).
   */
  leave(source: string): void {
    this.withdraw(source);
    const waiting = this.waiters.get(source);
    if (!waiting) return;
    const next = waiting.shift()!;
    if (waiting.length === 0) this.waiters.delete(source);
    next();
  }

  /** Resolves when one of `source`'s attempts under way is decided; at once when none is. */
  decided(source: string): Promise<void> {
    if (this.count(source) === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const waiting = this.waiters.get(source);
      if (waiting) waiting.push(resolve);
      else this.waiters.set(source, [resolve]);
    });
  }
}

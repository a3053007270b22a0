/** What is done with the answers to a LatestAsk, at once as each one comes. */
export interface LatestAskHandlers<T> {
  /** The answer to the latest ask answered yet. */
  show(value: T): void;
  /**
   * An ask failed; `newer` says it was asked for after the answer shown (or none is shown yet),
   * so that its failure may be told: one asked for before says nothing of what is shown.
   */
  failed(error: unknown, newer: boolean): void;
}

/**
 * One thing reloaded by asking again, several asks possibly out at once (a timer's reload as the
 * page comes back into view): a later ask wins, and the answer to an earlier one arriving after
 * it is dropped rather than put back over it. The handlers run as each answer comes, not after
 * an await of the caller's, so that nothing shown in between can come out of order.
 */
export class LatestAsk<T> {
  /** Asks made, and the latest of them shown (0: none). */
  private asks = 0;
  private shown = 0;
  /** Asks up to this one were made before `forget`: their answers and failures are dropped. */
  private forgotten = 0;
  /** When the answer shown was asked for (clock time). */
  private shownAskedAt: number | undefined;

  /** clock: Date.now by default, so that the time a sleeping laptop spent counts. */
  constructor(
    private readonly handlers: LatestAskHandlers<T>,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Asks with `load`; false when a later ask's answer was shown first and this one's dropped. */
  async ask(load: () => Promise<T>): Promise<boolean> {
    const ask = ++this.asks;
    const askedAt = this.clock();
    let value: T;
    try {
      value = await load();
    } catch (err) {
      if (ask <= this.forgotten) return false;
      this.handlers.failed(err, ask > this.shown);
      return true;
    }
    if (ask < this.shown || ask <= this.forgotten) return false;
    this.shown = ask;
    this.shownAskedAt = askedAt;
    this.handlers.show(value);
    return true;
  }

  /**
   * Drops the asks still out and what is shown (signed out: another user's answers are not this
   * one's to see; a token refused: its failures say nothing of the next); the next ask starts afresh.
   */
  forget(): void {
    this.forgotten = this.asks;
    this.shown = this.asks;
    this.shownAskedAt = undefined;
  }

  /**
   * Whether what is shown was asked for `ms` or longer ago, or nothing is shown yet. A clock set
   * back since (a negative age) says nothing of its age: that counts as older too.
   */
  olderThan(ms: number): boolean {
    if (this.shownAskedAt === undefined) return true;
    const age = this.clock() - this.shownAskedAt;
    return !(age >= 0 && age < ms);
  }
}

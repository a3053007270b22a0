/**
 * Keeps a direct listing from undoing an event. An index follows its engine's events, and after
 * a miss it asks the engine directly; the listing's answer can be older than an event that came
 * while it was on its way (a container removed, a pod deleted and re-created under the same
 * name), and putting it in would bring back what is gone: a ghost that makes its target
 * ambiguous until the next full resync. The guard remembers which objects had an event while
 * any listing was on its way, and forgets once none is.
 */
export class ListingGuard {
  private seq = 0;
  private listings = 0;
  private readonly touched = new Map<string, number>();

  /** An event about `id` was applied to the index. */
  heard(id: string): void {
    this.seq++;
    if (this.listings > 0) this.touched.set(id, this.seq);
  }

  /** Runs a direct listing; `take` is handed what it found with whether each is still news. */
  async listing<T>(list: () => Promise<T[]>, idOf: (item: T) => string, take: (item: T) => void): Promise<T[]> {
    this.listings++;
    const mark = this.seq;
    try {
      const found = await list();
      for (const item of found) if ((this.touched.get(idOf(item)) ?? 0) <= mark) take(item);
      return found;
    } finally {
      if (--this.listings === 0) this.touched.clear();
    }
  }
}

/**
 * Keeps a direct listing from undoing an event. An index follows its engine's events, and after
 * a miss it asks the engine directly; the listing's answer can be older than an event that came
 * while it was on its way (a container removed, a pod deleted and re-created under the same
 * name), and putting it in would bring back what is gone: a ghost that makes its target
 * ambiguous until the next full resync. The guard remembers which objects had an event while
 * a listing was on its way, and forgets each once no listing that started before it is: listings
 * that overlap without end (a slow engine, a steady stream of misses) do not make it grow.
 */
export class ListingGuard {
  private seq = 0;
  /** The event count at the start of each listing on its way, oldest first. */
  private readonly marks: number[] = [];
  private readonly touched = new Map<string, number>();

  /** Objects remembered: those with an event since the oldest listing on its way began. */
  get size(): number {
    return this.touched.size;
  }

  /** An event about `id` was applied to the index. */
  heard(id: string): void {
    this.seq++;
    if (this.marks.length > 0) this.touched.set(id, this.seq);
  }

  /** Runs a direct listing; `take` is handed what it found with whether each is still news. */
  async listing<T>(list: () => Promise<T[]>, idOf: (item: T) => string, take: (item: T) => void): Promise<T[]> {
    const mark = this.seq;
    this.marks.push(mark);
    try {
      const found = await list();
      for (const item of found) if ((this.touched.get(idOf(item)) ?? 0) <= mark) take(item);
      return found;
    } finally {
      this.marks.splice(this.marks.indexOf(mark), 1);
      this.forget();
    }
  }

  /** Drops what no listing still on its way can be told about: events before the oldest began. */
  private forget(): void {
    if (this.marks.length === 0) {
      this.touched.clear();
      return;
    }
    const oldest = this.marks[0]!;
    for (const [id, seq] of this.touched) if (seq <= oldest) this.touched.delete(id);
  }
}

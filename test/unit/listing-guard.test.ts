import { describe, expect, it } from 'vitest';
import { ListingGuard } from '../../broker/backend/listing-guard.js';

/** A listing whose answer is handed back when the test says. */
function heldListing(found: string[]) {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  return { list: async () => (await held, found), release };
}

describe('a direct listing under the guard', () => {
  it('takes what it found when nothing was heard of it meanwhile', async () => {
    const g = new ListingGuard();
    g.heard('a');
    const taken: string[] = [];
    expect(await g.listing(async () => ['a', 'b'], (x) => x, (x) => taken.push(x))).toEqual(['a', 'b']);
    expect(taken).toEqual(['a', 'b']);
  });

  it('leaves out what had an event while it was on its way, and still returns it', async () => {
    const g = new ListingGuard();
    const l = heldListing(['a', 'b']);
    const taken: string[] = [];
    const done = g.listing(l.list, (x) => x, (x) => taken.push(x));
    g.heard('b');
    l.release();
    expect(await done).toEqual(['a', 'b']);
    expect(taken).toEqual(['a']);
  });

  it('judges overlapping listings each from its own start', async () => {
    const g = new ListingGuard();
    const first = heldListing(['a', 'b']);
    const takenFirst: string[] = [];
    const one = g.listing(first.list, (x) => x, (x) => takenFirst.push(x));
    g.heard('a');
    const second = heldListing(['a', 'b']);
    const takenSecond: string[] = [];
    const two = g.listing(second.list, (x) => x, (x) => takenSecond.push(x));
    g.heard('b');
    first.release();
    second.release();
    await Promise.all([one, two]);
    expect(takenFirst).toEqual([]);
    expect(takenSecond).toEqual(['a']);
  });

  it('forgets once no listing is on its way, and after a listing that failed', async () => {
    const g = new ListingGuard();
    await expect(g.listing(async () => Promise.reject(new Error('engine gone')), (x: string) => x, () => undefined)).rejects.toThrow('engine gone');
    const l = heldListing(['a']);
    const taken: string[] = [];
    const done = g.listing(l.list, (x) => x, (x) => taken.push(x));
    l.release();
    await done;
    // An event heard after every listing ended does not reach a later one.
    g.heard('a');
    await g.listing(async () => ['a'], (x) => x, (x) => taken.push(x));
    expect(taken).toEqual(['a', 'a']);
  });
});

describe('listings that overlap without end', () => {
  it('remember only the events since the oldest one on its way began', async () => {
    const g = new ListingGuard();
    let running = heldListing([]);
    let done = g.listing(running.list, (x: string) => x, () => undefined);
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 1_000; i++) g.heard(`${round}-${i}`);
      // The next listing starts before this one ends: one is always on its way.
      const next = heldListing([`${round}-0`]);
      const taken: string[] = [];
      const nextDone = g.listing(next.list, (x) => x, (x) => taken.push(x));
      running.release();
      await done;
      // What came before the listing now oldest no longer counts for anything; nothing since then is lost.
      expect(g.size).toBe(0);
      g.heard(`${round}-0`);
      expect(g.size).toBe(1);
      running = next;
      done = nextDone.then((found) => (expect(taken).toEqual([]), found));
    }
    running.release();
    await done;
    expect(g.size).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../broker/store/memory-store.js';

/** The memory store's bound on rate-limit windows (MAX_ENTRIES). */
const CAP = 100_000;
const WINDOW_MS = 60_000;

const fill = async (store: MemoryStore, prefix: string, count: number) => {
  for (let i = 0; i < count; i++) await store.hit(`${prefix}${i}`, 5, WINDOW_MS);
};

describe('MemoryStore rate-limit windows', () => {
  it('forgets the oldest window, not the newest, once the table is full of live ones', async () => {
    const store = new MemoryStore();
    await store.hit('oldest', 1, WINDOW_MS);
    await store.hit('oldest', 1, WINDOW_MS);
    expect((await store.peek('oldest', 1)).allowed).toBe(false);
    await fill(store, 'source-', CAP);
    expect((await store.peek('oldest', 1)).allowed).toBe(true);
    await store.hit('newest', 1, WINDOW_MS);
    await store.hit('newest', 1, WINDOW_MS);
    expect((await store.peek('newest', 1)).allowed).toBe(false);
    expect((await store.peek(`source-${CAP - 1}`, 1)).allowed).toBe(false);
  });

  it('keeps each new window cheap when the table is full of live ones', async () => {
    const store = new MemoryStore();
    await fill(store, 'flood-', CAP);
    const started = performance.now();
    await fill(store, 'more-', 5_000);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('counts a window renewed after it expired as new, so it is not the first forgotten', async () => {
    const store = new MemoryStore();
    await store.hit('anchor', 1, WINDOW_MS);
    await store.hit('renewed', 1, 20);
    await new Promise((r) => setTimeout(r, 40));
    await fill(store, 'between-', 10);
    await store.hit('renewed', 1, WINDOW_MS);
    await store.hit('renewed', 1, WINDOW_MS);
    await fill(store, 'after-', CAP - 12);
    await store.hit('one-more', 1, WINDOW_MS);
    await store.hit('two-more', 1, WINDOW_MS);
    expect((await store.peek('renewed', 1)).allowed).toBe(false);
    expect((await store.peek('anchor', 1)).allowed).toBe(true);
    expect((await store.peek('between-0', 1)).allowed).toBe(true);
  });
});

describe('MemoryStore tickets', () => {
  it('keeps each new ticket cheap while many are live, and refuses one past the bound', async () => {
    const store = new MemoryStore();
    for (let i = 0; i < CAP - 5_000; i++) await store.putTicket(`t${i}`, 'v', WINDOW_MS);
    const started = performance.now();
    for (let i = 0; i < 5_000; i++) await store.putTicket(`u${i}`, 'v', WINDOW_MS);
    expect(performance.now() - started).toBeLessThan(1_000);
    await expect(store.putTicket('one-too-many', 'v', WINDOW_MS)).rejects.toThrow(/too many live tickets/);
    expect(await store.takeTicket('t0')).toBe('v');
    await store.putTicket('room-again', 'v', WINDOW_MS);
    expect(await store.takeTicket('room-again')).toBe('v');
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FLUSHES_PER_TURN, FlushTick } from '../../broker/recording/flush-tick.js';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('the recordings’ shared flush tick', () => {
  it('flushes everything that joined on one tick, the interval after the first joined', () => {
    const tick = new FlushTick(500);
    const calls: string[] = [];
    tick.join(() => calls.push('a'));
    vi.advanceTimersByTime(200);
    tick.join(() => calls.push('b'));
    vi.advanceTimersByTime(299);
    expect(calls).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(calls).toEqual(['a', 'b']);
    vi.advanceTimersByTime(5_000);
    expect(calls).toEqual(['a', 'b']);
  });

  it('calls a flush that joined twice once, and one that left not at all', () => {
    const tick = new FlushTick(500);
    const calls: string[] = [];
    const a = () => calls.push('a');
    const b = () => calls.push('b');
    tick.join(a);
    tick.join(a);
    tick.join(b);
    tick.leave(b);
    vi.advanceTimersByTime(500);
    expect(calls).toEqual(['a']);
  });

  it('keeps a flush that joins during a tick for the next one', () => {
    const tick = new FlushTick(500);
    let n = 0;
    const again = () => {
      n++;
      if (n === 1) tick.join(again);
    };
    tick.join(again);
    vi.advanceTimersByTime(500);
    expect(n).toBe(1);
    vi.advanceTimersByTime(499);
    expect(n).toBe(1);
    vi.advanceTimersByTime(1);
    expect(n).toBe(2);
  });

  it('flushes FLUSHES_PER_TURN recordings a turn, the rest on the turns after', async () => {
    const tick = new FlushTick(500);
    const flushed: number[] = [];
    const total = 2 * FLUSHES_PER_TURN + 1;
    for (let i = 0; i < total; i++) tick.join(() => flushed.push(i));
    vi.advanceTimersByTime(500);
    expect(flushed.length).toBe(FLUSHES_PER_TURN);
    await new Promise((resolve) => setImmediate(resolve));
    expect(flushed.length).toBe(2 * FLUSHES_PER_TURN);
    await new Promise((resolve) => setImmediate(resolve));
    expect(flushed).toEqual(Array.from({ length: total }, (_, i) => i));
  });
});

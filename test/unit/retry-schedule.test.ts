import { afterEach, describe, expect, it, vi } from 'vitest';
import { RetrySchedule } from '../../broker/backend/retry-schedule.js';

describe('the retry schedule of an engine index', () => {
  afterEach(() => vi.useRealTimers());

  it('tries once at start, then after waits that double up to the maximum, within ±20 %', async () => {
    vi.useFakeTimers();
    const at: number[] = [];
    const s = new RetrySchedule(async () => void at.push(Date.now()), { backoffInitialMs: 100, backoffMaxMs: 400 });
    const t0 = Date.now();
    await s.start();
    await s.start();
    expect(at).toHaveLength(1);
    for (const nominal of [100, 200, 400, 400]) {
      const before = Date.now();
      s.failed();
      await vi.advanceTimersByTimeAsync(nominal * 1.2 + 1);
      const waited = at.at(-1)! - before;
      expect(waited).toBeGreaterThanOrEqual(nominal * 0.8);
      expect(waited).toBeLessThanOrEqual(nominal * 1.2 + 1);
    }
    expect(at[0]).toBe(t0);
    s.succeeded();
    expect(s.failures).toBe(0);
  });

  it('retries at once for an immediate failure without counting it, and never after stop', async () => {
    vi.useFakeTimers();
    let attempts = 0;
    const s = new RetrySchedule(async () => void attempts++, { backoffInitialMs: 1_000, backoffMaxMs: 5_000 });
    await s.start();
    s.failed(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(attempts).toBe(2);
    expect(s.failures).toBe(0);
    s.failed();
    s.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    s.failed();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(attempts).toBe(2);
  });
});

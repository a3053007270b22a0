import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AckBatcher } from '../../proto/ack-batcher.js';

beforeEach(() => void vi.useFakeTimers());
afterEach(() => void vi.useRealTimers());

function batcher(connected = () => true) {
  const sent: number[] = [];
  const b = new AckBatcher((n) => connected() && (sent.push(n), true), 100, 1000);
  return { b, sent };
}

describe('AckBatcher', () => {
  it('acknowledges at once when a batch worth of bytes has arrived', () => {
    const { b, sent } = batcher();
    b.received(60);
    expect(sent).toEqual([]);
    b.received(40);
    expect(sent).toEqual([100]);
    b.received(250);
    expect(sent).toEqual([100, 350]);
  });

  it('acknowledges a small count once the interval has passed since its first byte', () => {
    const { b, sent } = batcher();
    b.received(1);
    vi.advanceTimersByTime(600);
    b.received(1);
    vi.advanceTimersByTime(399);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([2]);
    vi.advanceTimersByTime(5000);
    expect(sent).toEqual([2]);
  });

  it('never sends the same count twice', () => {
    const { b, sent } = batcher();
    b.received(5);
    b.flush();
    b.flush();
    vi.advanceTimersByTime(5000);
    expect(sent).toEqual([5]);
  });

  it('sends a count it could not send with the next acknowledgement', () => {
    let up = false;
    const { b, sent } = batcher(() => up);
    b.received(150);
    expect(sent).toEqual([]);
    up = true;
    b.received(1);
    expect(sent).toEqual([151]);
  });

  it('counts from what a resume says the peer has seen, and drops a pending acknowledgement on cancel', () => {
    const { b, sent } = batcher();
    b.received(90);
    b.cancel();
    vi.advanceTimersByTime(5000);
    expect(sent).toEqual([]);
    b.acknowledged(90);
    b.received(20);
    expect(sent).toEqual([]);
    b.received(80);
    expect(sent).toEqual([190]);
    b.reset();
    expect(b.count).toBe(0);
  });
});

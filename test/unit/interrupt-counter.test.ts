import { describe, expect, it } from 'vitest';
import { INTERRUPT_WINDOW_MS, InterruptCounter } from '../../client/cli/interrupts.js';

describe('InterruptCounter', () => {
  it('ends the session at the third Ctrl-C pressed in quick succession', () => {
    const c = new InterruptCounter();
    expect([c.press(1_000), c.press(1_300), c.press(1_600)]).toEqual([false, false, true]);
  });

  it('gives the command every Ctrl-C pressed further apart, however many over the session', () => {
    const c = new InterruptCounter();
    const ends = Array.from({ length: 20 }, (_, i) => c.press(i * (INTERRUPT_WINDOW_MS / 2 + 1)));
    expect(ends.every((end) => !end)).toBe(true);
  });

  it('counts presses within the window only: two old ones and one new do not end it', () => {
    const c = new InterruptCounter();
    c.press(0);
    c.press(100);
    expect(c.press(100 + INTERRUPT_WINDOW_MS + 1)).toBe(false);
    expect(c.press(200 + INTERRUPT_WINDOW_MS)).toBe(false);
    expect(c.press(300 + INTERRUPT_WINDOW_MS)).toBe(true);
  });
});

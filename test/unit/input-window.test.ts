import { describe, expect, it } from 'vitest';
import { InputWindow } from '../../proto/input-window.js';

const text = (chunks: readonly Uint8Array[]) => chunks.map((c) => Buffer.from(c).toString()).join('|');
const bytes = (s: string) => Buffer.from(s);

describe('the input window', () => {
  it('sends what was written at once while the window has room, and keeps it until acknowledged', () => {
    const w = new InputWindow(10);
    w.push(bytes('abc'));
    expect(text(w.take())).toBe('abc');
    w.push(bytes('de'));
    expect(text(w.take())).toBe('de');
    expect(w.unackedBytes).toBe(5);
    expect(text(w.unacknowledged)).toBe('abc|de');
  });

  it('cuts the chunk at the edge of the window and keeps the rest waiting, in order', () => {
    const w = new InputWindow(4);
    w.push(bytes('abcdef'));
    w.push(bytes('gh'));
    expect(text(w.take())).toBe('abcd');
    expect(w.waitingBytes).toBe(4);
    expect(w.take()).toEqual([]);
    expect(w.acknowledge(3)).toBe(true);
    expect(text(w.take())).toBe('ef|g');
    expect(text(w.unacknowledged)).toBe('d|ef|g');
    expect(w.waitingBytes).toBe(1);
  });

  it('lets input wait behind what already waits, even when the window has room for it', () => {
    const w = new InputWindow(4);
    w.push(bytes('abcd'));
    w.take();
    w.push(bytes('efgh'));
    w.acknowledge(1);
    w.push(bytes('i'));
    expect(text(w.take())).toBe('e');
    expect(w.waitingBytes).toBe(4);
  });

  it('takes everything that waits when told the window has no bound', () => {
    const w = new InputWindow(2);
    w.push(bytes('abcdef'));
    expect(text(w.take(Infinity))).toBe('abcdef');
    expect(w.unackedBytes).toBe(6);
  });

  it('keeps for a resend only what was sent past the count the broker has passed on', () => {
    const w = new InputWindow(100);
    w.push(bytes('abc'));
    w.push(bytes('defg'));
    w.take();
    expect(w.acknowledge(5)).toBe(true);
    expect(text(w.unacknowledged)).toBe('fg');
    expect(w.unackedBytes).toBe(2);
  });

  it('ignores a count already acknowledged and one past what was sent', () => {
    const w = new InputWindow(100);
    w.push(bytes('abcd'));
    w.take();
    w.push(bytes('ef'));
    expect(w.acknowledge(2)).toBe(true);
    expect(w.acknowledge(2)).toBe(false);
    expect(w.acknowledge(1)).toBe(false);
    // 'ef' waits, not sent: the broker cannot have passed it on.
    expect(w.acknowledge(5)).toBe(false);
    expect(text(w.unacknowledged)).toBe('cd');
    expect(w.unackedBytes).toBe(2);
  });

  it('forgets what was sent and hands back what waits when the broker does not resume', () => {
    const w = new InputWindow(3);
    w.push(bytes('abcde'));
    w.take();
    expect(text(w.forget())).toBe('de');
    expect(w.unacknowledged).toEqual([]);
    expect(w.unackedBytes).toBe(0);
    expect(w.waitingBytes).toBe(0);
    // Counted from nothing again: an acknowledgement of the old count changes nothing.
    expect(w.acknowledge(3)).toBe(false);
    expect(w.unackedBytes).toBe(0);
  });
});

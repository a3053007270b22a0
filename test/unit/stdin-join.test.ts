import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HELD_CHUNK_COST_BYTES } from '../../broker/config/limits.js';
import { JOIN_MAX_BYTES, StdinJoin } from '../../broker/kubernetes/stdin-join.js';

/** A join over a socket that writes a message only when the test says so. */
function joinOver(gapMs: number) {
  const sent: Buffer[] = [];
  let unwritten = 0;
  const join = new StdinJoin({
    gapMs,
    busy: () => unwritten > 0,
    send: (data) => {
      unwritten++;
      sent.push(Buffer.from(data));
    },
  });
  const written = () => {
    unwritten--;
    join.written();
  };
  return { join, sent, written, text: () => sent.map((b) => b.toString()) };
}

describe('stdin joined on its way to a pods/exec socket', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends a write at once when nothing waits, and joins what comes while the socket has not written it', () => {
    const s = joinOver(0);
    s.join.write(Buffer.from('a'));
    expect(s.text()).toEqual(['a']);
    for (const c of 'bcdef') s.join.write(Buffer.from(c));
    expect(s.text()).toEqual(['a']);
    expect(s.join.heldBytes).toBe(5 + HELD_CHUNK_COST_BYTES);
    s.written();
    expect(s.text()).toEqual(['a', 'bcdef']);
    expect(s.join.heldBytes).toBe(0);
    s.written();
    s.join.write(Buffer.from('g'));
    expect(s.text()).toEqual(['a', 'bcdef', 'g']);
  });

  it('keeps a gap between messages, joining what comes within it, and sends a write after a pause at once', () => {
    const s = joinOver(10);
    s.join.write(Buffer.from('a'));
    s.written();
    s.join.write(Buffer.from('b'));
    vi.advanceTimersByTime(5);
    s.join.write(Buffer.from('c'));
    expect(s.text()).toEqual(['a']);
    vi.advanceTimersByTime(5);
    expect(s.text()).toEqual(['a', 'bc']);
    s.written();
    vi.advanceTimersByTime(50);
    s.join.write(Buffer.from('d'));
    expect(s.text()).toEqual(['a', 'bc', 'd']);
  });

  it('sends what waits at once when the command answers, the gap not sat out', () => {
    const s = joinOver(10);
    s.join.write(Buffer.from('a'));
    s.written();
    s.join.write(Buffer.from('b'));
    vi.advanceTimersByTime(2);
    expect(s.text()).toEqual(['a']);
    s.join.answered();
    expect(s.text()).toEqual(['a', 'b']);
    s.written();
    // An answer before the next write: it goes at once too.
    s.join.answered();
    s.join.write(Buffer.from('c'));
    expect(s.text()).toEqual(['a', 'b', 'c']);
    // No answer: the gap holds again.
    s.written();
    s.join.write(Buffer.from('d'));
    expect(s.text()).toEqual(['a', 'b', 'c']);
    vi.advanceTimersByTime(10);
    expect(s.text()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('waits past the gap for a socket that has not written the last message yet', () => {
    const s = joinOver(10);
    s.join.write(Buffer.from('a'));
    s.join.write(Buffer.from('b'));
    vi.advanceTimersByTime(50);
    expect(s.text()).toEqual(['a']);
    s.written();
    expect(s.text()).toEqual(['a', 'b']);
  });

  it('sends what waits at once when it reaches the most a message joins, busy socket or not', () => {
    const s = joinOver(10);
    s.join.write(Buffer.from('a'));
    const piece = Buffer.alloc(JOIN_MAX_BYTES / 4, 0x62);
    for (let i = 0; i < 4; i++) s.join.write(piece);
    expect(s.sent.map((b) => b.length)).toEqual([1, JOIN_MAX_BYTES]);
    expect(s.join.heldBytes).toBe(0);
  });

  it('sends a big write as it is, after what waited, in order', () => {
    const sent: Uint8Array[] = [];
    const join = new StdinJoin({ gapMs: 10, busy: () => sent.length > 0, send: (d) => sent.push(d) });
    const big = Buffer.alloc(JOIN_MAX_BYTES, 0x7a);
    join.write(Buffer.from('a'));
    join.write(Buffer.from('b'));
    join.write(big);
    expect(sent.map((b) => Buffer.from(b).subarray(0, 1).toString())).toEqual(['a', 'b', 'z']);
    // Not copied.
    expect(sent[2]).toBe(big);
  });

  it('sends what waits when flushed (before the end of input), and drops it once closed', () => {
    const s = joinOver(10);
    s.join.write(Buffer.from('a'));
    s.join.write(Buffer.from('b'));
    s.join.flush();
    expect(s.text()).toEqual(['a', 'b']);
    s.join.write(Buffer.from('c'));
    s.join.close();
    s.join.write(Buffer.from('d'));
    vi.advanceTimersByTime(50);
    s.written();
    s.written();
    expect(s.text()).toEqual(['a', 'b']);
    expect(s.join.heldBytes).toBe(0);
  });

  it('joins many small writes byte-exact and in order, copying each byte a few times at most', () => {
    const s = joinOver(10);
    const bytes = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7) & 0xff));
    const copy = vi.spyOn(Buffer, 'allocUnsafe');
    for (let i = 0; i < bytes.length; i += 3) s.join.write(bytes.subarray(i, i + 3));
    s.join.flush();
    expect(Buffer.compare(Buffer.concat(s.sent), bytes)).toBe(0);
    expect(s.sent.every((b) => b.length <= JOIN_MAX_BYTES)).toBe(true);
    // A few buffers each message (it grows by doubling), not one each of the 66,667 writes.
    expect(copy.mock.calls.length).toBeLessThanOrEqual(10 * s.sent.length);
    copy.mockRestore();
  });
});

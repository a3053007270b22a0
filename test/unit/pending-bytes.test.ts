import { describe, expect, it } from 'vitest';
import { jsonLength, LARGE_BUFFER_BYTES, PendingBytes, SMALL_BUFFER_BYTES } from '../../broker/recording/pending-bytes.js';

function collect(): { pending: PendingBytes; spilled: Buffer[]; all: () => Buffer } {
  const spilled: Buffer[] = [];
  const pending = new PendingBytes((buf, length) => spilled.push(Buffer.from(buf.subarray(0, length))));
  return {
    pending,
    spilled,
    all: () => {
      pending.flush();
      return Buffer.concat(spilled);
    },
  };
}

describe('pending recording bytes', () => {
  it('escapes every byte inside a JSON string as JSON.stringify does', () => {
    const text = Buffer.from(Array.from({ length: 128 }, (_, i) => i)).toString('latin1') + 'grün ✓ 😀 \u2028';
    const bytes = Buffer.from(text);
    const { pending, all } = collect();
    pending.json(bytes, 0, bytes.length);
    expect(all().toString()).toBe(JSON.stringify(text).slice(1, -1));
    expect(jsonLength(bytes, 0, bytes.length)).toBe(Buffer.byteLength(JSON.stringify(text)) - 2);
  });

  it('carries escapes and plain runs across buffers without losing or reordering a byte', () => {
    // Six-byte escapes over several buffers, then plain text over several more, then a mix.
    const escapes = Buffer.alloc(3 * LARGE_BUFFER_BYTES, 0x1b);
    const plain = Buffer.alloc(3 * LARGE_BUFFER_BYTES + 17, 0x78);
    const mixed = Buffer.from('a"b\\c\n'.repeat(40_000));
    const { pending, spilled, all } = collect();
    pending.ascii('[');
    for (const part of [escapes, plain, mixed]) pending.json(part, 0, part.length);
    pending.ascii(']');
    const expected = `[${[escapes, plain, mixed].map((p) => JSON.stringify(p.toString('latin1')).slice(1, -1)).join('')}]`;
    expect(all().toString('latin1')).toBe(expected);
    expect(Math.max(...spilled.map((b) => b.length))).toBeLessThanOrEqual(LARGE_BUFFER_BYTES);
  });

  it('starts small and hands over nothing until it is flushed or full', () => {
    const { pending, spilled } = collect();
    pending.ascii('x'.repeat(100));
    expect(pending.length).toBe(100);
    expect(spilled).toEqual([]);
    pending.raw(Buffer.alloc(SMALL_BUFFER_BYTES, 0x79));
    expect(pending.length).toBe(100 + SMALL_BUFFER_BYTES);
    expect(spilled).toEqual([]);
    pending.raw(Buffer.alloc(LARGE_BUFFER_BYTES, 0x7a));
    expect(spilled.length).toBe(1);
    expect(spilled[0]!.length).toBe(LARGE_BUFFER_BYTES);
    expect(pending.length).toBe(100 + SMALL_BUFFER_BYTES);
  });

  it('writes text longer than a buffer whole', () => {
    const text = '€'.repeat(LARGE_BUFFER_BYTES);
    const { pending, all } = collect();
    pending.text(text);
    expect(all().toString()).toBe(text);
  });

  it('writes a line whole when it outgrows the small buffer and does not fit beside what it held', () => {
    const held = 'x'.repeat(2_000);
    const line = `[${'a'.repeat(LARGE_BUFFER_BYTES - 1_000)}]`;
    const { pending, spilled, all } = collect();
    pending.ascii(held);
    pending.text(line);
    pending.ascii('after');
    expect(all().toString()).toBe(held + line + 'after');
    expect(spilled[0]!.toString()).toBe(held);
  });
});

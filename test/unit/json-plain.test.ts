import { describe, expect, it } from 'vitest';
import { isPlain, plainEnd } from '../../broker/recording/json-plain.js';

/** The byte-by-byte answer that the word scan must give. */
function slowEnd(src: Uint8Array, from: number, to: number): number {
  let k = from;
  while (k < to && isPlain(src[k]!)) k++;
  return k;
}

describe('plain JSON runs', () => {
  it('treats controls, the quote and the backslash as the only bytes that need an escape', () => {
    const needs = Array.from({ length: 256 }, (_, b) => b).filter((b) => !isPlain(b));
    expect(needs).toEqual([...Array.from({ length: 0x20 }, (_, b) => b), 0x22, 0x5c]);
    for (let b = 0; b < 256; b++) {
      const s = String.fromCharCode(b);
      if (b < 0x80) expect(isPlain(b)).toBe(JSON.stringify(s) === `"${s}"`);
    }
  });

  it('finds the first special byte at every position and alignment, as a byte loop does', () => {
    const buf = Buffer.alloc(200, 0x78);
    for (const special of [0x00, 0x1b, 0x1f, 0x22, 0x5c]) {
      for (let at = 0; at < 120; at++) {
        buf.fill(0x78);
        buf[at] = special;
        for (const offset of [0, 1, 2, 3]) {
          const view = buf.subarray(offset);
          const to = view.length;
          expect(plainEnd(view, 0, to)).toBe(slowEnd(view, 0, to));
          expect(plainEnd(view, 5, to)).toBe(slowEnd(view, 5, to));
        }
      }
    }
  });

  it('does not stop at bytes next to the special ones or at UTF-8', () => {
    // Neighbours of each borrow in the word arithmetic, and bytes with the top bit set.
    const near = Buffer.from([0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff, 0xe2, 0x9c, 0x93]);
    const run = Buffer.concat(Array.from({ length: 20 }, () => near));
    expect(plainEnd(run, 0, run.length)).toBe(run.length);
  });

  it('agrees with the byte loop on random text of every kind', () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let n = 0; n < 2000; n++) {
      const len = Math.floor(rnd() * 300);
      const density = rnd() * 0.05;
      const src = Buffer.from(Array.from({ length: len }, () => (rnd() < density ? [0x0a, 0x22, 0x5c, 0x1b, 0x00][Math.floor(rnd() * 5)]! : 0x20 + Math.floor(rnd() * 224))));
      const from = Math.floor(rnd() * (len + 1));
      const to = from + Math.floor(rnd() * (len - from + 1));
      expect(plainEnd(src, from, to)).toBe(slowEnd(src, from, to));
    }
  });
});

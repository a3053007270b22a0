import { describe, expect, it } from 'vitest';
import { completePrefixLength, Utf8Boundary } from '../../proto/utf8-boundary.js';
import { concatBytes, mulberry32, randomInt } from './helpers/prng.js';

const encoder = new TextEncoder();
const strict = new TextDecoder('utf-8', { fatal: true });
const MIXED = 'aé€😀';
const MIXED_BYTES = encoder.encode(MIXED); // 1 + 2 + 3 + 4 = 10 bytes

/** Feeds the chunks through a fresh Utf8Boundary; returns what it emitted, flush included. */
function run(chunks: readonly Uint8Array[]): { emitted: Uint8Array[]; tail: Uint8Array | undefined } {
  const boundary = new Utf8Boundary();
  // Copy each emitted chunk at once: the caller of split owns the result only until the next call.
  const emitted = chunks.map((c) => boundary.split(c).slice());
  return { emitted, tail: boundary.flush() };
}

function expectEachDecodes(chunks: readonly Uint8Array[]): void {
  for (const chunk of chunks) {
    expect(() => strict.decode(chunk), Buffer.from(chunk).toString('hex')).not.toThrow();
  }
}

describe('Utf8Boundary', () => {
  it('has the expected 10-byte test string', () => {
    expect(MIXED_BYTES.length).toBe(10);
  });

  it('emits whole characters only at every split point of "aé€😀", and loses nothing', () => {
    for (let i = 0; i <= MIXED_BYTES.length; i++) {
      const { emitted, tail } = run([MIXED_BYTES.subarray(0, i), MIXED_BYTES.subarray(i)]);
      expect(tail, `split at ${i}`).toBeUndefined();
      expectEachDecodes(emitted);
      expect(strict.decode(concatBytes(emitted))).toBe(MIXED);
    }
  });

  it('emits whole characters only at every pair of split points', () => {
    for (let i = 0; i <= MIXED_BYTES.length; i++) {
      for (let j = i; j <= MIXED_BYTES.length; j++) {
        const { emitted, tail } = run([MIXED_BYTES.subarray(0, i), MIXED_BYTES.subarray(i, j), MIXED_BYTES.subarray(j)]);
        expect(tail).toBeUndefined();
        expectEachDecodes(emitted);
        expect(strict.decode(concatBytes(emitted))).toBe(MIXED);
      }
    }
  });

  it('reassembles a stream fed one byte at a time', () => {
    const text = MIXED.repeat(5);
    const bytes = encoder.encode(text);
    const { emitted, tail } = run([...bytes].map((b) => new Uint8Array([b])));
    expect(tail).toBeUndefined();
    expectEachDecodes(emitted);
    expect(strict.decode(concatBytes(emitted))).toBe(text);
    // Nothing is held back longer than needed: a character goes out with its last byte.
    expect(emitted.filter((c) => c.length > 0)).toHaveLength([...text].length);
  });

  it('reassembles random chunkings of a long mixed text', () => {
    const rand = mulberry32(42);
    const text = Array.from({ length: 400 }, (_, i) => ['a', 'é', '€', '😀', '\n', 'ж', '中'][i % 7]).join('');
    const bytes = encoder.encode(text);
    for (let round = 0; round < 60; round++) {
      const chunks: Uint8Array[] = [];
      for (let pos = 0; pos < bytes.length; ) {
        const n = Math.min(bytes.length - pos, randomInt(rand, 9));
        chunks.push(bytes.subarray(pos, pos + n));
        pos += n;
      }
      const { emitted, tail } = run(chunks);
      expect(tail).toBeUndefined();
      expectEachDecodes(emitted);
      expect(strict.decode(concatBytes(emitted))).toBe(text);
    }
  });

  it('returns the incomplete tail from flush, and nothing on a second flush', () => {
    const boundary = new Utf8Boundary();
    const out = boundary.split(new Uint8Array([0x61, 0xe2, 0x82]));
    expect([...out]).toEqual([0x61]);
    expect([...(boundary.flush() ?? [])]).toEqual([0xe2, 0x82]);
    expect(boundary.flush()).toBeUndefined();
  });

  it('returns undefined from flush when the stream ended on a boundary', () => {
    const boundary = new Utf8Boundary();
    expect(strict.decode(boundary.split(MIXED_BYTES))).toBe(MIXED);
    expect(boundary.flush()).toBeUndefined();
  });

  it('starts afresh after flush', () => {
    const boundary = new Utf8Boundary();
    boundary.split(new Uint8Array([0xf0, 0x9f]));
    boundary.flush();
    expect([...boundary.split(encoder.encode('ok'))]).toEqual([...encoder.encode('ok')]);
  });

  it('keeps a copy of the tail, so a caller reusing its buffer does not corrupt it', () => {
    const boundary = new Utf8Boundary();
    const buffer = new Uint8Array(16);
    // First read: "a" and the first byte of "€" (e2 82 ac).
    buffer.set([0x61, 0xe2]);
    expect([...boundary.split(buffer.subarray(0, 2))]).toEqual([0x61]);
    // The owner reuses the same memory for the next read: the rest of "€", then "b".
    buffer.fill(0xee);
    buffer.set([0x82, 0xac, 0x62]);
    const out = boundary.split(buffer.subarray(0, 3));
    expect(strict.decode(out)).toBe('€b');
  });

  it('passes invalid bytes through instead of holding them forever', () => {
    const boundary = new Utf8Boundary();
    expect([...boundary.split(new Uint8Array([0xff]))]).toEqual([0xff]);
    expect([...boundary.split(new Uint8Array([0x80, 0x80, 0x80, 0x80]))]).toEqual([0x80, 0x80, 0x80, 0x80]);
    expect(boundary.flush()).toBeUndefined();
  });
});

describe('completePrefixLength', () => {
  const cases: Array<[string, number[], number]> = [
    ['empty input', [], 0],
    ['ASCII', [0x61, 0x62], 2],
    ['a lone 2-byte lead', [0xc3], 0],
    ['a whole 2-byte character', [0xc3, 0xa9], 2],
    ['a 3-byte character missing one byte', [0x61, 0xe2, 0x82], 1],
    ['a whole 3-byte character', [0xe2, 0x82, 0xac], 3],
    ['a 4-byte character missing one byte', [0xf0, 0x9f, 0x98], 0],
    ['a 4-byte character missing two bytes', [0x61, 0xf0, 0x9f], 1],
    ['a whole 4-byte character', [0xf0, 0x9f, 0x98, 0x80], 4],
    ['a lone continuation byte', [0x61, 0x80], 2],
    ['an invalid lead byte', [0x61, 0xff], 2],
  ];
  for (const [what, bytes, expected] of cases) {
    it(`returns ${expected} for ${what}`, () => {
      expect(completePrefixLength(new Uint8Array(bytes))).toBe(expected);
    });
  }
});

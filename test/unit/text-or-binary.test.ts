import { describe, expect, it } from 'vitest';
import { looksBinary } from '../../broker/recording/text-or-binary.js';

describe('telling text output from binary output', () => {
  it('takes ASCII and whole UTF-8 as text, NUL bytes and invalid sequences as binary', () => {
    expect(looksBinary(Buffer.from('hello\n'))).toBe(false);
    expect(looksBinary(Buffer.from('grün ✓ 😀'))).toBe(false);
    expect(looksBinary(Buffer.from([0x61, 0x00, 0x62]))).toBe(true);
    expect(looksBinary(Buffer.from([0xff, 0xfe, 0x41]))).toBe(true);
  });

  it('keeps text that a chunk boundary cut through a character as text, on both edges', () => {
    const bytes = Buffer.from('ab😀cd€');
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(looksBinary(bytes.subarray(0, cut)), `head ${cut}`).toBe(false);
      expect(looksBinary(bytes.subarray(cut)), `tail ${cut}`).toBe(false);
    }
  });
});

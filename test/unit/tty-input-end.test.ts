import { describe, expect, it } from 'vitest';
import { TtyInputEnd } from '../../broker/backend/tty-input-end.js';

const ends = (...writes: string[]) => {
  const end = new TtyInputEnd();
  for (const w of writes) end.wrote(Buffer.from(w));
  return [...end.bytes()];
};

describe('the end of a terminal session input', () => {
  it('is one EOT with nothing written, or after a whole line', () => {
    expect(ends()).toEqual([4]);
    expect(ends('abc\n')).toEqual([4]);
    expect(ends('abc\r')).toEqual([4]);
    expect(ends('abc', '\n')).toEqual([4]);
  });

  it('is two EOTs after unfinished text: the first hands the text over, the second ends the input', () => {
    expect(ends('abc')).toEqual([4, 4]);
    expect(ends('abc\n', 'de')).toEqual([4, 4]);
  });

  it('goes by the last write with bytes in it', () => {
    expect(ends('abc', '')).toEqual([4, 4]);
    expect(ends('abc\n', '')).toEqual([4]);
    expect(ends('abc\x04')).toEqual([4]);
  });
});

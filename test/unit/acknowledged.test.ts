import { describe, expect, it } from 'vitest';
import { dropAcknowledged } from '../../proto/acknowledged.js';

const text = (q: Uint8Array[]) => q.map((c) => Buffer.from(c).toString()).join('|');

describe('dropping acknowledged input', () => {
  it('drops whole chunks, cuts one in the middle, and keeps the unacknowledged rest in order', () => {
    const q = [Buffer.from('abc'), Buffer.from('defg'), Buffer.from('hi')];
    dropAcknowledged(q, 3);
    expect(text(q)).toBe('defg|hi');
    dropAcknowledged(q, 2);
    expect(text(q)).toBe('fg|hi');
    dropAcknowledged(q, 10);
    expect(q).toEqual([]);
  });

  it('changes nothing for a count of zero', () => {
    const q = [Buffer.from('ab')];
    dropAcknowledged(q, 0);
    expect(text(q)).toBe('ab');
  });
});

import { describe, expect, it } from 'vitest';
import { cutText } from '../../broker/cut-text.js';

describe('cutText', () => {
  it('keeps text that fits whole, up to the limit itself', () => {
    expect(cutText('', 3)).toBe('');
    expect(cutText('abc', 3)).toBe('abc');
  });

  it('cuts text over the limit to the limit and says so with an ellipsis', () => {
    expect(cutText('abcd', 3)).toBe('abc…');
    expect(cutText('x'.repeat(5000), 300)).toBe(`${'x'.repeat(300)}…`);
  });
});

import { describe, expect, it } from 'vitest';
import { validateTarget } from '../../broker/backend/target.js';
import { EntryError } from '../../broker/errors.js';

const refusal = (instance: unknown): string | undefined => {
  try {
    validateTarget('shop', 'web', instance);
    return undefined;
  } catch (err) {
    return err instanceof EntryError ? err.code : String(err);
  }
};

describe('validateTarget', () => {
  it('takes a JSON number as an instance only when it is a whole instance number', () => {
    expect(validateTarget('shop', 'web', 2).instance).toBe('2');
    expect(validateTarget('shop', 'web', 0).instance).toBe('0');
    expect(validateTarget('shop', 'web', 999_999).instance).toBe('999999');
    for (const n of [1.5, -1, 1_000_000, 1e21, Number.NaN, Number.POSITIVE_INFINITY]) expect(refusal(n), String(n)).toBe('ENTRY_BAD_REQUEST');
  });

  it('takes text as an instance number or a pod name, as before', () => {
    expect(validateTarget('shop', 'web', '007').instance).toBe('7');
    expect(validateTarget('shop', 'web', 'web-7d4b9c-x2x9q').instance).toBe('web-7d4b9c-x2x9q');
    expect(refusal('Web_1')).toBe('ENTRY_BAD_REQUEST');
  });
});

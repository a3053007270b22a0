import { describe, expect, it } from 'vitest';
import { bearerOf } from '../../broker/auth/bearer.js';

describe('the token of an Authorization header', () => {
  it('is what follows Bearer, in any case, without the blanks around it', () => {
    expect(bearerOf('Bearer abc.def.ghi')).toBe('abc.def.ghi');
    expect(bearerOf('bearer   abc.def.ghi  ')).toBe('abc.def.ghi');
    expect(bearerOf('BEARER\tabc')).toBe('abc');
  });

  it('is all that follows when it cannot be one token, for the verifier to refuse as bad', () => {
    expect(bearerOf('Bearer a b')).toBe('a b');
  });

  it('is none without a header, with another scheme, or with nothing after the scheme', () => {
    expect(bearerOf(undefined)).toBeUndefined();
    expect(bearerOf('')).toBeUndefined();
    expect(bearerOf('Basic dXNlcjpwYXNz')).toBeUndefined();
    expect(bearerOf('Bearer')).toBeUndefined();
    expect(bearerOf('Bearer   ')).toBeUndefined();
    expect(bearerOf('Bearerabc')).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { ERRORS } from '../../broker/errors.js';
import { PASSING_REFUSALS } from '../../proto/passing-refusals.js';

describe('the refusals a resuming client tries again after', () => {
  it("are codes of the broker's registry, each a 503 or a 429, or the 502 of a hand-off the broker reached could not make", () => {
    for (const code of PASSING_REFUSALS) {
      expect(Object.keys(ERRORS), code).toContain(code);
      expect(code === 'ENTRY_HANDOFF_REFUSED' ? [502] : [503, 429], code).toContain(ERRORS[code as keyof typeof ERRORS].status);
    }
  });

  it('include a hand-off refused for TLS: the session lives on at the holder, which a later try may reach', () => {
    expect(PASSING_REFUSALS.has('ENTRY_HANDOFF_REFUSED')).toBe(true);
  });
});

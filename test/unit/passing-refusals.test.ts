import { describe, expect, it } from 'vitest';
import { ERRORS } from '../../broker/errors.js';
import { PASSING_REFUSALS } from '../../proto/passing-refusals.js';

describe('the refusals a resuming client tries again after', () => {
  it("are codes of the broker's registry, each a 503 or a 429", () => {
    for (const code of PASSING_REFUSALS) {
      expect(Object.keys(ERRORS), code).toContain(code);
      expect([503, 429], code).toContain(ERRORS[code as keyof typeof ERRORS].status);
    }
  });
});

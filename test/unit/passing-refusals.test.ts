import { describe, expect, it } from 'vitest';
import { ERRORS } from '../../broker/errors.js';
import { ClientError } from '../../client/protocol/client-error.js';
import { lastingRefusal } from '../../client/protocol/refused-upgrade.js';
import { PASSING_REFUSALS } from '../../proto/passing-refusals.js';

describe('the refusals a resuming client tries again after', () => {
  it("are codes of the broker's registry, each a 503 or a 429, the 502 of a hand-off the broker reached could not make, or the 408 of a request too slow to arrive", () => {
    const statuses: Record<string, number[]> = { ENTRY_HANDOFF_REFUSED: [502], ENTRY_REQUEST_TIMEOUT: [408] };
    for (const code of PASSING_REFUSALS) {
      expect(Object.keys(ERRORS), code).toContain(code);
      expect(statuses[code] ?? [503, 429], code).toContain(ERRORS[code as keyof typeof ERRORS].status);
    }
  });

  it('include a hand-off refused for TLS: the session lives on at the holder, which a later try may reach', () => {
    expect(PASSING_REFUSALS.has('ENTRY_HANDOFF_REFUSED')).toBe(true);
  });
});

describe('a refused resume upgrade that ends the session', () => {
  it("is the broker's own refusal, with its registry code, unless that code passes", () => {
    const revoked = new ClientError('ENTRY_TOKEN_REVOKED', ERRORS.ENTRY_TOKEN_REVOKED.message, 401);
    expect(lastingRefusal(revoked)).toBe(revoked);
    expect(lastingRefusal(new ClientError('ENTRY_HEADERS_TOO_LARGE', ERRORS.ENTRY_HEADERS_TOO_LARGE.message, 431))?.code).toBe('ENTRY_HEADERS_TOO_LARGE');
    for (const code of PASSING_REFUSALS) expect(lastingRefusal(new ClientError(code, 'for now', ERRORS[code as keyof typeof ERRORS].status)), code).toBeUndefined();
  });

  it('is never a proxy answer without a code, nor a failure to connect', () => {
    for (const status of [401, 403, 404, 502, 503]) expect(lastingRefusal(new ClientError('ENTRY_CONNECT_FAILED', `broker answered HTTP ${status}`, status)), String(status)).toBeUndefined();
    expect(lastingRefusal(new ClientError('ENTRY_CONNECT_FAILED', 'cannot reach broker http://127.0.0.1:1: ECONNREFUSED'))).toBeUndefined();
    expect(lastingRefusal(new Error('socket hang up'))).toBeUndefined();
  });
});

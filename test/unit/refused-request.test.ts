import { describe, expect, it } from 'vitest';
import { MAX_LOGGED_PATH, refusedRequest } from '../../broker/http/refused-request.js';

describe('refusedRequest', () => {
  it('reads the method and the path without its query from the start of the bytes', () => {
    expect(refusedRequest(Buffer.from('POST /api/tickets?ticket=secret HTTP/1.1\r\nHost: x\r\n'))).toEqual({ method: 'POST', path: '/api/tickets' });
  });

  it('cuts a long path, and reads nothing from bytes that do not start with a request line', () => {
    const long = refusedRequest(Buffer.from(`GET /${'a'.repeat(100_000)}`));
    expect(long.path).toHaveLength(MAX_LOGGED_PATH + 1);
    expect(long.path!.endsWith('…')).toBe(true);
    for (const bytes of ['GARBAGE\r\n\r\n', 'a: b\r\n', ' GET / HTTP/1.1', 'get / HTTP/1.1', 'GET \u0001 HTTP/1.1', '']) expect(refusedRequest(Buffer.from(bytes)), JSON.stringify(bytes)).toEqual({});
    expect(refusedRequest(undefined)).toEqual({});
  });
});

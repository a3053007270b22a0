import { describe, expect, it } from 'vitest';
import { loggedPath, MAX_LOGGED_PATH, refusedRequest, targetOverLimit } from '../../broker/http/refused-request.js';

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

describe('loggedPath', () => {
  it('keeps a path up to the limit whole and cuts a longer one to it, with an ellipsis', () => {
    const atLimit = `/${'a'.repeat(MAX_LOGGED_PATH - 1)}`;
    expect(loggedPath(atLimit)).toBe(atLimit);
    expect(loggedPath(`${atLimit}b`)).toBe(`${atLimit}…`);
    expect(loggedPath('')).toBe('');
  });
});

describe('targetOverLimit', () => {
  const LIMIT = 16_384;
  const whole = (text: string) => {
    const b = Buffer.from(text, 'latin1');
    return targetOverLimit(b, b.length, LIMIT);
  };

  it('is true when the target alone is over the limit, whole or still arriving', () => {
    expect(whole(`GET /${'a'.repeat(LIMIT)} HTTP/1.1\r\nHost: x\r\n\r\n`)).toBe(true);
    expect(whole(`GET /${'a'.repeat(LIMIT + 10)}`)).toBe(true);
  });

  it('is false when headers took a target under the limit over it', () => {
    expect(whole(`GET /${'a'.repeat(LIMIT - 10)} HTTP/1.1\r\nX-Big: ${'a'.repeat(1_000)}\r\n\r\n`)).toBe(false);
    expect(whole(`GET /healthz HTTP/1.1\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`)).toBe(false);
  });

  it('is false when the bytes are not all the connection sent: the target may have begun before them', () => {
    const b = Buffer.from(`GET /${'a'.repeat(LIMIT + 10)}`, 'latin1');
    expect(targetOverLimit(b, b.length + 40, LIMIT)).toBe(false);
    expect(targetOverLimit(b, undefined, LIMIT)).toBe(false);
    expect(targetOverLimit(undefined, 0, LIMIT)).toBe(false);
  });
});

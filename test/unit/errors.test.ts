import { describe, expect, it } from 'vitest';
import { EntryError, ERRORS, isEntryError, type ErrorCode } from '../../broker/errors.js';
import { BAD_FRAME_CLOSE_CODE, RESUMING_CLOSE_CODE } from '../../proto/close-codes.js';

const entries = Object.entries(ERRORS) as Array<[ErrorCode, (typeof ERRORS)[ErrorCode]]>;

describe('the error registry', () => {
  it('has entries', () => {
    expect(entries.length).toBeGreaterThan(10);
  });

  for (const [code, entry] of entries) {
    it(`gives ${code} an HTTP status from 400 to 599, a close code from 1000 to 4999 and a message`, () => {
      expect(entry.status).toBeGreaterThanOrEqual(400);
      expect(entry.status).toBeLessThanOrEqual(599);
      expect(Number.isInteger(entry.close)).toBe(true);
      expect(entry.close).toBeGreaterThanOrEqual(1000);
      expect(entry.close).toBeLessThanOrEqual(4999);
      // Close codes a peer may not send on the wire (RFC 6455 §7.4.1).
      expect([1004, 1005, 1006, 1015]).not.toContain(entry.close);
      expect(entry.message.length).toBeGreaterThan(0);
    });
  }

  it('closes on a malformed message with the code the clients use, and leaves the resuming close code to clients', () => {
    expect(ERRORS.ENTRY_BAD_FRAME.close).toBe(BAD_FRAME_CLOSE_CODE);
    expect(entries.map(([, e]) => e.close)).not.toContain(RESUMING_CLOSE_CODE);
  });

  it('names every code ENTRY_<UPPER_SNAKE>, each once', () => {
    const codes = entries.map(([code]) => code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(code).toMatch(/^ENTRY_[A-Z0-9_]+$/);
  });
});

describe('EntryError', () => {
  it('carries the code, status and close code of its registry entry', () => {
    const err = new EntryError('ENTRY_NOT_FOUND', 'shop/web/1');
    expect(err.code).toBe('ENTRY_NOT_FOUND');
    expect(err.status).toBe(404);
    expect(err.closeCode).toBe(4404);
    expect(err.message).toBe('container not found: shop/web/1');
    expect(err.name).toBe('EntryError');
    expect(isEntryError(err)).toBe(true);
    expect(isEntryError(new Error('x'))).toBe(false);
  });

  it('uses the registry message alone when there is no detail', () => {
    expect(new EntryError('ENTRY_INTERNAL').message).toBe(ERRORS.ENTRY_INTERNAL.message);
  });

  it('keeps the cause', () => {
    const cause = new Error('root');
    expect(new EntryError('ENTRY_INTERNAL', undefined, { cause }).cause).toBe(cause);
  });
});

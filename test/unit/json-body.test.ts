import { describe, expect, it } from 'vitest';
import { parseJsonObject } from '../../broker/http/body.js';
import { EntryError } from '../../broker/errors.js';

describe('a JSON request body', () => {
  it('is read as an object, a leading byte order mark ignored', () => {
    expect(parseJsonObject(Buffer.from('{"app":"shop"}'))).toEqual({ app: 'shop' });
    expect(parseJsonObject(Buffer.from('\uFEFF{"app":"shop"}'))).toEqual({ app: 'shop' });
  });

  it('is none when empty', () => {
    expect(parseJsonObject(Buffer.alloc(0))).toBeNull();
  });

  it('is refused as ENTRY_BAD_REQUEST when it is not JSON, or not an object', () => {
    for (const [text, message] of [
      ['{"app":', 'body is not JSON'],
      ['\uFEFF\uFEFF{}', 'body is not JSON'],
      ['[1,2]', 'body must be a JSON object'],
      ['"app"', 'body must be a JSON object'],
      ['null', 'body must be a JSON object'],
    ] as const) {
      const thrown = (() => {
        try {
          parseJsonObject(Buffer.from(text));
        } catch (err) {
          return err;
        }
        return undefined;
      })();
      expect(thrown, text).toBeInstanceOf(EntryError);
      expect((thrown as EntryError).code, text).toBe('ENTRY_BAD_REQUEST');
      expect((thrown as EntryError).message, text).toContain(message);
    }
  });
});

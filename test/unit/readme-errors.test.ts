import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS } from '../../broker/errors.js';

describe('the README error table', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const rows = [...readme.matchAll(/^\| `(ENTRY_[A-Z_]+)` \| (\d+) \| (\d+) \| (.+) \|$/gm)].map((m) => ({
    code: m[1]!,
    status: Number(m[2]),
    close: Number(m[3]),
    message: m[4]!,
  }));

  it('lists every registered code with its status, close code and message, and nothing else', () => {
    const fromRegistry = Object.entries(ERRORS).map(([code, e]) => ({ code, status: e.status, close: e.close, message: e.message }));
    expect(rows).toEqual(fromRegistry);
  });
});

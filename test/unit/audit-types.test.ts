import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AUDIT_TYPES } from '../../broker/audit/events.js';
import { AUDIT_TYPES as CONSOLE_TYPES } from '../../client/web/console/audit-view.js';

describe('the audit event types', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const table = readme.slice(readme.indexOf('| type | fields |'));
  const rows = [...table.slice(0, table.indexOf('\n\n')).matchAll(/^\| `([a-z.]+)` \|/gm)].map((m) => m[1]);

  it("are the README's table, in its order", () => {
    expect(rows).toEqual([...AUDIT_TYPES]);
  });

  it('are all offered by the console as a filter', () => {
    expect([...CONSOLE_TYPES]).toEqual([...AUDIT_TYPES]);
  });
});

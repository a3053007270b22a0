import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ROUTES } from '../../broker/http/api.js';

describe("the README's HTTP API", () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const documented = new Set([...readme.matchAll(/^\| `(GET|POST|DELETE|PUT) (\/api\/[^`?\s]*)[^`]*` \|/gm)].map((m) => `${m[1]} ${m[2]}`));

  it('has a row for every route the broker serves, and none it does not', () => {
    // /^\/api\/sessions\/([A-Za-z0-9-]{1,64})$/ is written /api/sessions/:id.
    const served = ROUTES.map((r) => `${r.method} ${r.path.source.replace(/^\^|\$$/g, '').replace(/\([^)]*\)/g, ':id').replace(/\\\//g, '/')}`);
    expect([...documented].sort()).toEqual(served.sort());
  });
});

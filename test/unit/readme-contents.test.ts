import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** Headings outside code blocks, with the anchors GitHub gives them. */
function headings(markdown: string): Array<{ level: number; title: string; anchor: string }> {
  const out: Array<{ level: number; title: string; anchor: string }> = [];
  let code = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) code = !code;
    const m = code ? null : /^(#{1,6}) (.+)$/.exec(line);
    if (m) out.push({ level: m[1]!.length, title: m[2]!, anchor: anchorOf(m[2]!) });
  }
  return out;
}

function anchorOf(title: string): string {
  return title.trim().toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, '').replace(/ /g, '-');
}

describe('the README contents', () => {
  const readme = read('README.md');
  const contents = /^## Contents\n\n((?:\s*- .*\n)+)/m.exec(readme);
  const entries = [...(contents?.[1] ?? '').matchAll(/- \[(.+)\]\(#([^)]+)\)/g)].map((m) => ({ title: m[1]!, anchor: m[2]! }));
  const sections = headings(readme.slice(readme.indexOf('## Contents') + 1)).filter((h) => h.level <= 3);

  it('lists every section after it, in order, and leads to each', () => {
    expect(contents, 'a "## Contents" list').not.toBeNull();
    const listed = entries.map((e) => e.anchor);
    const topLevel = sections.filter((h) => h.level === 2).map((h) => h.anchor);
    expect(listed.filter((a) => topLevel.includes(a))).toEqual(topLevel);
    for (const e of entries) expect(sections.map((h) => h.anchor), `${e.title}: no such heading`).toContain(e.anchor);
  });

  it('points at deploy/README.md headings that exist', () => {
    const deploy = headings(read('deploy/README.md')).map((h) => h.anchor);
    const links = [...readme.matchAll(/\(deploy\/README\.md#([^)]+)\)/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(0);
    for (const anchor of links) expect(deploy, anchor).toContain(anchor);
  });
});

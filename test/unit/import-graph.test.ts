import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** The source tree's import graph, type-only imports included: they are dependencies too. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const IMPORT = /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/g;

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) return name === 'node_modules' ? [] : sources(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

const files = ['broker', 'client', 'proto'].flatMap(sources);
const graph = new Map<string, { local: string[]; packages: string[] }>();
for (const file of files) {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const local: string[] = [];
  const packages: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1]!;
    if (spec.startsWith('.')) local.push(relative(ROOT, resolve(ROOT, dirname(file), spec)).replace(/\.js$/, '.ts'));
    else packages.push(spec);
  }
  graph.set(file, { local, packages });
}

describe('the import graph', () => {
  it('has no cycles', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].join(' → '));
        return;
      }
      state.set(file, 'open');
      for (const next of graph.get(file)?.local ?? []) visit(next, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('keeps the broker apart from the client, and the session layer apart from the transport', () => {
    const offending = [...graph].flatMap(([file, { local }]) =>
      local
        .filter((to) => (file.startsWith('broker/') && to.startsWith('client/')) || (file.startsWith('broker/session/') && to.startsWith('broker/transport/')))
        .map((to) => `${file} → ${to}`),
    );
    expect(offending).toEqual([]);
  });

  it('keeps the engines behind the Backend seam: only the wiring imports a backend folder', () => {
    const engine = (f: string) => f.startsWith('broker/docker/') || f.startsWith('broker/kubernetes/');
    const offending = [...graph].flatMap(([file, { local }]) => (engine(file) || file === 'broker/backends.ts' ? [] : local.filter(engine).map((to) => `${file} → ${to}`)));
    expect(offending).toEqual([]);
  });

  it('imports each engine client in its own backend folder only', () => {
    const outside = [...graph].flatMap(([file, { packages }]) =>
      packages
        .filter((p) => (p === 'dockerode' && !file.startsWith('broker/docker/')) || (p.startsWith('@kubernetes/client-node') && !file.startsWith('broker/kubernetes/')))
        .map((p) => `${file} imports ${p}`),
    );
    expect(outside).toEqual([]);
  });
});

import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeClusterPossible } from '../helpers/kube-cluster.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RUN = join(ROOT, 'dist/bench/run.js');
const DOCKER_FIGURES = ['setup_scripted', 'cli_roundtrip', 'echo_p50', 'echo_p99', 'throughput_raw', 'roundtrip_raw', 'stall_rss_growth', 'mass_disconnect'];
/** Run where a cluster is possible; the bench takes a lease on the suite's cluster, or starts one (~15 s). */
const KUBE_FIGURES = ['kube_setup', 'kube_echo_p50', 'kube_echo_p99', 'kube_output'];
const FIGURES = kubeClusterPossible() ? [...DOCKER_FIGURES, ...KUBE_FIGURES] : DOCKER_FIGURES;
/** Small sizes: the smoke test checks that every figure runs, in seconds, not what it measures. */
const SMOKE_ENV = { BENCH_TRANSFER_MIB: '8', BENCH_SESSIONS: '10' };

interface FigureJson {
  name: string;
  entry: number | null;
  direct: number | null;
  ratio: number | null;
  unit: string;
  runs: number;
  extra?: Record<string, number | string>;
  error?: string;
}

/**
 * CI smoke for the benchmark: the quick mode of a few figures must complete against the real
 * engine and write valid JSON. No timing is asserted; the numbers only have to be there.
 */
describe('bench --quick (smoke)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'entry-bench-smoke-'));
  const out = join(dir, 'results.json');

  beforeAll(() => {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'bench/tsconfig.json')], { cwd: ROOT, stdio: 'pipe' });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs and writes every asked figure with positive numbers', async () => {
    if (FIGURES === DOCKER_FIGURES) console.log(`bench smoke: not run here: ${KUBE_FIGURES.join(', ')} (no Kubernetes cluster possible on this machine)`);
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [RUN, '--quick', '--only', FIGURES.join(','), '--out', out], { cwd: ROOT, env: { ...process.env, ...SMOKE_ENV }, timeout: 230_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    expect(code, `bench failed:\n${stderr}\n${stdout}`).toBe(0);
    expect(stdout).toMatch(/\| figure/);
    const results = JSON.parse(readFileSync(out, 'utf8')) as FigureJson[];
    expect(Array.isArray(results)).toBe(true);
    expect(results.map((f) => f.name).sort()).toEqual([...FIGURES].sort());
    for (const f of results) {
      expect(f.error, f.name).toBeUndefined();
      expect(typeof f.unit).toBe('string');
      expect(f.runs, f.name).toBeGreaterThan(0);
      if (f.name === 'mass_disconnect') {
        // Seconds until the dropped sessions' processes were gone, all of them; no direct side.
        expect(f.entry, f.name).toBeGreaterThan(0);
        expect(f.extra?.['processes_left'], f.name).toBe(0);
        expect(f.extra?.['echo_samples'], f.name).toBeGreaterThan(0);
        // The typists beside Entry's: direct, and one hop through the WebSocket relay.
        expect(f.extra?.['direct_echo_p99_ms'], f.name).toBeGreaterThan(0);
        expect(f.extra?.['ws_relay_echo_p99_ms'], f.name).toBeGreaterThan(0);
        expect(f.direct).toBeNull();
      } else if (f.name === 'stall_rss_growth') {
        // Growth can be zero or slightly negative (GC); there is no direct counterpart.
        expect(Number.isFinite(f.entry)).toBe(true);
        expect(f.direct).toBeNull();
        expect(f.ratio).toBeNull();
      } else {
        expect(f.entry, f.name).toBeGreaterThan(0);
        expect(f.direct, f.name).toBeGreaterThan(0);
        expect(f.ratio, f.name).toBeGreaterThan(0);
      }
      if (f.name === 'echo_p50' || f.name === 'echo_p99') expect(f.extra?.['ws_relay_ms'], f.name).toBeGreaterThan(0);
      if (f.name === 'throughput_raw' || f.name === 'roundtrip_raw') {
        // Transfer figures carry the null relays' sides too: a rate, and one per run for each side.
        for (const relay of ['relay', 'ws_relay']) {
          expect(f.extra?.[`${relay}_MBps`], f.name).toBeGreaterThan(0);
          expect(f.extra?.[`${relay}_ratio`], f.name).toBeGreaterThan(0);
          expect(f.extra?.[`${relay}_cpu_relay_s_per_GB`], f.name).toBeGreaterThan(0);
        }
        for (const side of ['entry', 'direct', 'relay', 'ws_relay']) expect(String(f.extra?.[`${side}_runs_MBps`]).split(' ')).toHaveLength(f.runs);
      }
    }
  }, 240_000);
});

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NodeInspector } from '../test/helpers/inspector.js';
import { startBroker } from './broker.js';
import { EntrySession } from './entry-client.js';
import type { BenchContext, FigureName } from './figure.js';
import { echoOnce, RAW_ECHO, untilOutput } from './figures/echo.js';
import { entryRoundtrip } from './figures/roundtrip.js';
import { entryRun as entryStdin } from './figures/stdin.js';
import { entryOutput, GiB } from './figures/throughput.js';

interface Workload {
  name: string;
  /** The figures whose Entry side it is: `--only` with any of them profiles it. */
  figures: FigureName[];
  run(ctx: BenchContext, scale: number): Promise<void>;
}

/** The hot paths: the Entry side of the throughput, stdin, round-trip and echo figures. */
const WORKLOADS: Workload[] = [
  { name: 'throughput_tty', figures: ['throughput_tty'], run: async (ctx, scale) => void (await entryOutput(ctx, true, Math.round(GiB * scale))) },
  { name: 'throughput_raw', figures: ['throughput_raw'], run: async (ctx, scale) => void (await entryOutput(ctx, false, Math.round(GiB * scale))) },
  { name: 'stdin_raw', figures: ['stdin_raw'], run: async (ctx, scale) => void (await entryStdin(ctx, Math.round(GiB * scale))) },
  { name: 'roundtrip_raw', figures: ['roundtrip_raw'], run: async (ctx, scale) => void (await entryRoundtrip(ctx, Math.round(GiB * scale))) },
  {
    name: 'echo',
    figures: ['echo_p50', 'echo_p99'],
    async run(ctx, scale) {
      const s = await EntrySession.open(ctx.broker.wsUrl, ctx.token, ctx.target, { argv: RAW_ECHO.map((a) => Buffer.from(a)), tty: true });
      await untilOutput(s, 0x52);
      const keys = Math.round(4000 * scale);
      for (let i = 0; i < keys; i++) await echoOnce(s, Uint8Array.of(0x61 + (i % 26)));
      s.close();
      await s.closed;
    },
  },
];

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

/** Builtins and natives (no script URL) are named with their caller: `writev ← writevGeneric …`. */
function keyWithCaller(cf: CallFrame, caller: CallFrame | undefined): string {
  if (cf.url || !caller || cf.functionName.startsWith('(')) return frameKey(cf);
  return `${cf.functionName || '(anonymous)'} ← ${frameKey(caller)}`;
}

function frameKey(cf: CallFrame): string {
  const name = cf.functionName || '(anonymous)';
  if (!cf.url) return name;
  const url = cf.url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '');
  return `${name} ${url}:${cf.lineNumber + 1}`;
}

export interface Hotspot {
  fn: string;
  percent: number;
  ms?: number;
  mb?: number;
}

/** Self time per function from a .cpuprofile, as a share of the non-idle samples. */
export function cpuHotspots(path: string, window?: { fromUs: number; toUs: number }, top = 15): { busyMs: number; gcPercent: number; hot: Hotspot[] } {
  const p = JSON.parse(readFileSync(path, 'utf8')) as {
    startTime: number;
    nodes: Array<{ id: number; callFrame: CallFrame; children?: number[] }>;
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, CallFrame>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.callFrame);
  const self = new Map<string, number>();
  // Sample times are CLOCK_MONOTONIC µs, the clock of process.hrtime in any process here.
  let t = p.startTime;
  const times = p.timeDeltas.map((d) => (t += d));
  const inWindow = (i: number) => !window || (times[i]! >= window.fromUs && times[i]! <= window.toUs);
  const useWindow = window !== undefined && p.samples.some((_, i) => inWindow(i));
  let busy = 0;
  let gc = 0;
  for (let i = 0; i < p.samples.length; i++) {
    if (useWindow && !inWindow(i)) continue;
    const node = byId.get(p.samples[i]!);
    // The time until the next sample belongs to this one.
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    if (!node || node.callFrame.functionName === '(idle)') continue;
    busy += dt;
    if (node.callFrame.functionName === '(garbage collector)') gc += dt;
    const key = keyWithCaller(node.callFrame, parent.get(node.id));
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const hot = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, ms]) => ({ fn, ms, percent: (ms / busy) * 100 }));
  return { busyMs: busy, gcPercent: (gc / busy) * 100, hot };
}

interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

/** Allocated bytes per function from a sampling heap profile (collected objects included). */
export function allocationHotspots(profile: { head: HeapNode }, top = 12): { totalMB: number; hot: Hotspot[] } {
  const self = new Map<string, number>();
  let total = 0;
  const walk = (n: HeapNode, caller: CallFrame | undefined) => {
    if (n.selfSize > 0) {
      const key = keyWithCaller(n.callFrame, caller);
      self.set(key, (self.get(key) ?? 0) + n.selfSize);
      total += n.selfSize;
    }
    for (const c of n.children) walk(c, n.callFrame);
  };
  walk(profile.head, undefined);
  const hot = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, bytes]) => ({ fn, mb: bytes / 1e6, percent: (bytes / total) * 100 }));
  return { totalMB: total / 1e6, hot };
}

/**
 * Profiles the broker on each workload: a CPU profile (node --cpu-prof, written when the
 * broker exits) and, in a second pass, a sampling allocation profile over the inspector that
 * keeps collected objects (what --heap-prof would drop). Writes bench/profiles/ and returns
 * a text summary.
 */
export async function profileBroker(ctx: BenchContext, dir: string, scale: number, only: ReadonlySet<FigureName> = new Set()): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const out: string[] = [];
  for (const w of WORKLOADS) {
    if (only.size > 0 && !w.figures.some((f) => only.has(f))) continue;
    ctx.log(`profile: ${w.name} (cpu)`);
    const cpuBroker = await startBroker({ nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${w.name}.cpuprofile`] });
    const window = { fromUs: 0, toUs: 0 };
    try {
      const profCtx = { ...ctx, broker: cpuBroker, token: await cpuBroker.mint() };
      // Untimed warm-up: module loading and first compilation stay out of the window.
      await w.run(profCtx, scale / 16);
      window.fromUs = Number(process.hrtime.bigint() / 1000n);
      await w.run(profCtx, scale);
      window.toUs = Number(process.hrtime.bigint() / 1000n);
    } finally {
      await cpuBroker.stop();
    }
    const cpu = cpuHotspots(join(dir, `${w.name}.cpuprofile`), window);
    out.push(`## ${w.name}: CPU self time (busy ${cpu.busyMs.toFixed(0)} ms, GC ${cpu.gcPercent.toFixed(1)}%)`, '');
    for (const h of cpu.hot) out.push(`${h.percent.toFixed(1).padStart(5)}%  ${h.ms!.toFixed(0).padStart(6)} ms  ${h.fn}`);
    out.push('');

    ctx.log(`profile: ${w.name} (allocations)`);
    const allocBroker = await startBroker({ nodeArgs: ['--inspect=127.0.0.1:0'] });
    try {
      const inspector = await NodeInspector.attach(allocBroker.logs);
      const allocCtx = { ...ctx, broker: allocBroker, token: await allocBroker.mint() };
      await w.run(allocCtx, scale / 16);
      await inspector.call('HeapProfiler.enable');
      await inspector.call('HeapProfiler.startSampling', { samplingInterval: 8192, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
      await w.run(allocCtx, scale / 4);
      const { profile } = await inspector.call<{ profile: { head: HeapNode } }>('HeapProfiler.stopSampling');
      inspector.close();
      writeFileSync(join(dir, `${w.name}.heapprofile`), JSON.stringify(profile));
      const alloc = allocationHotspots(profile);
      out.push(`## ${w.name}: allocations (sampled, ${alloc.totalMB.toFixed(0)} MB over a ${scale / 4} × workload)`, '');
      for (const h of alloc.hot) out.push(`${h.percent.toFixed(1).padStart(5)}%  ${h.mb!.toFixed(1).padStart(7)} MB  ${h.fn}`);
      out.push('');
    } finally {
      await allocBroker.stop();
    }
  }
  const text = out.join('\n');
  writeFileSync(join(dir, 'summary.md'), text);
  return text;
}

import { DirectExec } from '../direct-exec.js';
import { EntrySession, type OutputHandler } from '../entry-client.js';
import type Docker from 'dockerode';
import { type BenchContext, figure, type Figure, type FigureName, type Suite } from '../figure.js';
import { CpuMeter, type CpuSnapshot, MB } from '../proc-stats.js';
import { rotate, relayExtra, SIDES, type Side } from '../sides.js';
import { median, now } from '../stats.js';

export const GiB = 1024 ** 3;

/** Bytes per transfer run: 1 GiB, 128 MiB quick; BENCH_TRANSFER_MIB overrides (the CI smoke test uses a few MiB). */
export function transferBytes(quick: boolean): number {
  const mib = Number(process.env['BENCH_TRANSFER_MIB'] ?? 0);
  return mib > 0 ? mib * 1024 * 1024 : quick ? 128 * 1024 * 1024 : GiB;
}

export interface Transfer {
  /** MB/s over the measured window. */
  rate: number;
  /** CPU seconds each party used during the session. */
  cpu: CpuSnapshot;
  /** Mean bytes per delivery: per STDOUT frame through Entry, per stream read directly. */
  chunk?: number;
}

/**
 * Median CPU seconds per GB moved, per party, as `<side>_cpu_<party>_s_per_GB` fields. The
 * hop (the broker, or the null relay) is the meter's first pid; direct has none.
 */
export function cpuPerGB(side: Side, runs: Transfer[], bytes: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const party of ['broker', 'dockerd', 'shim', 'client'] as const) {
    if (side === 'direct' && party === 'broker') continue;
    const name = side !== 'entry' && party === 'broker' ? 'relay' : party;
    out[`${side}_cpu_${name}_s_per_GB`] = median(runs.map((t) => t.cpu[party] / (bytes / 1e9)));
  }
  return out;
}

/** Medians, ratio, relay figures and CPU per GB of a transfer figure measured on all sides. */
export function transferFigure(name: FigureName, bytes: number, runs: Record<Side, Transfer[]>, more: Record<string, number> = {}): Figure {
  const rates = Object.fromEntries(SIDES.map((side) => [side, runs[side].map((t) => t.rate)])) as Record<Side, number[]>;
  const extra = { bytes, ...more, ...relayExtra(rates) };
  for (const side of SIDES) Object.assign(extra, cpuPerGB(side, runs[side], bytes));
  return figure(name, 'MB/s', runs.entry.length, median(rates.entry), median(rates.direct), { extra });
}

/** One transfer through Entry, and the same straight to Docker through the given client. */
export interface TransferRuns {
  entry(bytes: number, meter: CpuMeter): Promise<Transfer>;
  direct(docker: Docker, bytes: number, meter: CpuMeter): Promise<Transfer>;
}

/**
 * Runs a transfer on every side: a small untimed warm-up each, then `reps` rounds in rotating
 * order. Each side's CPU meter counts its hop (the broker, or a relay) with dockerd, the shim
 * and this process.
 */
export async function measureSides(ctx: BenchContext, reps: number, bytes: number, t: TransferRuns): Promise<Record<Side, Transfer[]>> {
  const meter = (pid: number) => new CpuMeter(pid, ctx.target.id);
  const [brokerMeter, relayMeter, wsRelayMeter] = [meter(ctx.broker.pid), meter(ctx.relay.pid), meter(ctx.wsRelay.pid)];
  const run: Record<Side, (n: number) => Promise<Transfer>> = {
    entry: (n) => t.entry(n, brokerMeter),
    direct: (n) => t.direct(ctx.docker, n, brokerMeter),
    relay: (n) => t.direct(ctx.relay.docker, n, relayMeter),
    ws_relay: (n) => t.direct(ctx.wsRelay.docker, n, wsRelayMeter),
  };
  // Warm-up: 32 MiB, or the whole transfer when that is smaller.
  for (const side of SIDES) await run[side](Math.min(bytes, 32 * 1024 * 1024));
  return rotate(reps, Object.fromEntries(SIDES.map((side) => [side, () => run[side](bytes)])) as Record<Side, () => Promise<Transfer>>);
}

/** Counts output until `bytes` have arrived; resolves with first→last byte timing. */
function countOutput(side: { onOutput: OutputHandler }, bytes: number): Promise<{ seconds: number; chunk: number }> {
  return new Promise((resolve) => {
    let got = 0;
    let deliveries = 0;
    let first = 0n;
    side.onOutput = (data) => {
      if (got === 0) first = now();
      got += data.length;
      deliveries++;
      if (got >= bytes) {
        side.onOutput = () => undefined;
        resolve({ seconds: Number(now() - first) / 1e9, chunk: got / deliveries });
      }
    };
  });
}

export function outputCommand(bytes: number): string[] {
  return ['head', '-c', String(bytes), '/dev/zero'];
}

export async function entryOutput(ctx: BenchContext, tty: boolean, bytes: number, meter = new CpuMeter(ctx.broker.pid, ctx.target.id)): Promise<Transfer> {
  const cpu0 = meter.snapshot();
  const s = await EntrySession.open(ctx.broker.wsUrl, ctx.token, ctx.target, { argv: outputCommand(bytes).map((a) => Buffer.from(a)), tty, cols: 80, rows: 24 });
  const { seconds, chunk } = await countOutput(s, bytes);
  const code = await s.exit;
  await s.closed;
  if (code !== 0) throw new Error(`head exited with ${code} through Entry`);
  return { rate: bytes / MB / seconds, cpu: CpuMeter.delta(cpu0, meter.snapshot()), chunk };
}

async function directOutput(docker: Docker, ctx: BenchContext, tty: boolean, bytes: number, meter: CpuMeter): Promise<Transfer> {
  const cpu0 = meter.snapshot();
  const d = await DirectExec.open(docker, ctx.target.id, { cmd: outputCommand(bytes), tty });
  const { seconds, chunk } = await countOutput(d, bytes);
  const code = await d.exitCode();
  d.close();
  if (code !== 0) throw new Error(`head exited with ${code} directly`);
  return { rate: bytes / MB / seconds, cpu: CpuMeter.delta(cpu0, meter.snapshot()), chunk };
}

function outputSuite(name: 'throughput_tty' | 'throughput_raw', tty: boolean): Suite {
  return {
    names: [name],
    async run(ctx): Promise<Figure[]> {
      const bytes = transferBytes(ctx.quick);
      // Raw runs take seconds and vary from run to run by ±10 %: more of them for a steadier median.
      const reps = ctx.quick ? 2 : tty ? 3 : 5;
      const runs = await measureSides(ctx, reps, bytes, {
        entry: (n, meter) => entryOutput(ctx, tty, n, meter),
        direct: (docker, n, meter) => directOutput(docker, ctx, tty, n, meter),
      });
      const f = transferFigure(name, bytes, runs, {
        entry_mean_frame_bytes: median(runs.entry.map((t) => t.chunk ?? 0)),
        direct_mean_read_bytes: median(runs.direct.map((t) => t.chunk ?? 0)),
      });
      ctx.log(`${name}: entry ${f.entry} MB/s, direct ${f.direct} MB/s, ${JSON.stringify(f.extra)}`);
      return [f];
    },
  };
}

export const throughputTty = outputSuite('throughput_tty', true);
export const throughputRaw = outputSuite('throughput_raw', false);

import { DirectExec } from '../direct-exec.js';
import { EntrySession, type OutputHandler } from '../entry-client.js';
import { type BenchContext, figure, type Figure, type Suite } from '../figure.js';
import { CpuMeter, type CpuSnapshot, MB } from '../proc-stats.js';
import { median, now } from '../stats.js';

export const GiB = 1024 ** 3;

export interface Transfer {
  /** MB/s over the measured window. */
  rate: number;
  /** CPU seconds each party used during the session. */
  cpu: CpuSnapshot;
  /** Mean bytes per delivery: per STDOUT frame through Entry, per stream read directly. */
  chunk?: number;
}

/** Median CPU seconds per GB moved, per party, as `<side>_cpu_<party>_s_per_GB` fields. */
export function cpuPerGB(side: 'entry' | 'direct', runs: Transfer[], bytes: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const party of ['broker', 'dockerd', 'shim', 'client'] as const) {
    if (side === 'direct' && party === 'broker') continue;
    out[`${side}_cpu_${party}_s_per_GB`] = median(runs.map((t) => t.cpu[party] / (bytes / 1e9)));
  }
  return out;
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

async function directOutput(ctx: BenchContext, tty: boolean, bytes: number, meter: CpuMeter): Promise<Transfer> {
  const cpu0 = meter.snapshot();
  const d = await DirectExec.open(ctx.docker, ctx.target.id, { cmd: outputCommand(bytes), tty });
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
      const bytes = ctx.quick ? 128 * 1024 * 1024 : GiB;
      const reps = ctx.quick ? 2 : 3;
      const meter = new CpuMeter(ctx.broker.pid, ctx.target.id);
      // Warm-up, untimed and small.
      await entryOutput(ctx, tty, 32 * 1024 * 1024, meter);
      await directOutput(ctx, tty, 32 * 1024 * 1024, meter);
      const e: Transfer[] = [];
      const d: Transfer[] = [];
      for (let i = 0; i < reps; i++) {
        if (i % 2 === 0) {
          e.push(await entryOutput(ctx, tty, bytes, meter));
          d.push(await directOutput(ctx, tty, bytes, meter));
        } else {
          d.push(await directOutput(ctx, tty, bytes, meter));
          e.push(await entryOutput(ctx, tty, bytes, meter));
        }
      }
      const entry = median(e.map((t) => t.rate));
      const direct = median(d.map((t) => t.rate));
      const extra = {
        bytes,
        entry_mean_frame_bytes: median(e.map((t) => t.chunk ?? 0)),
        direct_mean_read_bytes: median(d.map((t) => t.chunk ?? 0)),
        ...cpuPerGB('entry', e, bytes),
        ...cpuPerGB('direct', d, bytes),
      };
      ctx.log(`${name}: entry ${entry.toFixed(0)} MB/s, direct ${direct.toFixed(0)} MB/s, CPU s/GB ${JSON.stringify(extra)}`);
      return [figure(name, 'MB/s', reps, entry, direct, { extra })];
    },
  };
}

export const throughputTty = outputSuite('throughput_tty', true);
export const throughputRaw = outputSuite('throughput_raw', false);

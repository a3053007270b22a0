import { DirectExec } from '../direct-exec.js';
import { EntrySession } from '../entry-client.js';
import type Docker from 'dockerode';
import type { BenchContext, Figure, Suite } from '../figure.js';
import { CpuMeter, MB } from '../proc-stats.js';
import { now } from '../stats.js';
import { untilOutput } from './echo.js';
import { measureSides, type Transfer, transferBytes, transferFigure } from './throughput.js';

/** Prints R when ready, then swallows stdin. */
export const SINK = ['/bin/sh', '-c', 'echo R; exec cat > /dev/null'];
const CHUNK = Buffer.alloc(256 * 1024, 0x78);

interface Writer {
  write(data: Uint8Array): Promise<void> | undefined;
  endInput(): void;
}

/** Writes `bytes` in 256 KiB chunks, waiting whenever the writer is congested. */
export async function feed(w: Writer, bytes: number): Promise<void> {
  for (let sent = 0; sent < bytes; sent += CHUNK.length) {
    const data = bytes - sent >= CHUNK.length ? CHUNK : CHUNK.subarray(0, bytes - sent);
    const wait = w.write(data);
    if (wait) await wait;
  }
  w.endInput();
}

/** From the first byte written to the exit code arriving. */
export async function entryRun(ctx: BenchContext, bytes: number, meter = new CpuMeter(ctx.broker.pid, ctx.target.id)): Promise<Transfer> {
  const cpu0 = meter.snapshot();
  const s = await EntrySession.open(ctx.broker.wsUrl, ctx.token, ctx.target, { argv: SINK.map((a) => Buffer.from(a)), tty: false });
  await untilOutput(s, 0x52);
  const t0 = now();
  await feed(s, bytes);
  const code = await s.exit;
  const seconds = Number(now() - t0) / 1e9;
  await s.closed;
  if (code !== 0) throw new Error(`cat exited with ${code} through Entry`);
  return { rate: bytes / MB / seconds, cpu: CpuMeter.delta(cpu0, meter.snapshot()) };
}

export async function directRun(docker: Docker, ctx: BenchContext, bytes: number, meter: CpuMeter): Promise<Transfer> {
  const cpu0 = meter.snapshot();
  const d = await DirectExec.open(docker, ctx.target.id, { cmd: SINK, tty: false });
  await untilOutput(d, 0x52);
  const t0 = now();
  await feed(d, bytes);
  const code = await d.exitCode();
  const seconds = Number(now() - t0) / 1e9;
  d.close();
  if (code !== 0) throw new Error(`cat exited with ${code} directly`);
  return { rate: bytes / MB / seconds, cpu: CpuMeter.delta(cpu0, meter.snapshot()) };
}

export const stdinRaw: Suite = {
  names: ['stdin_raw'],
  async run(ctx): Promise<Figure[]> {
    const bytes = transferBytes(ctx.quick);
    const reps = ctx.quick ? 2 : 5;
    const runs = await measureSides(ctx, reps, bytes, {
      entry: (n, meter) => entryRun(ctx, n, meter),
      direct: (docker, n, meter) => directRun(docker, ctx, n, meter),
    });
    const f = transferFigure('stdin_raw', bytes, runs);
    ctx.log(`stdin_raw: entry ${f.entry} MB/s, direct ${f.direct} MB/s, ${JSON.stringify(f.extra)}`);
    return [f];
  },
};

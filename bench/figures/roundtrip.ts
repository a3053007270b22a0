import type Docker from 'dockerode';
import { DirectExec } from '../direct-exec.js';
import { EntrySession } from '../entry-client.js';
import type { BenchContext, Figure, Suite } from '../figure.js';
import { CpuMeter, MB } from '../proc-stats.js';
import { now } from '../stats.js';
import { untilOutput } from './echo.js';
import { measureSides, type Transfer, transferBytes, transferFigure } from './throughput.js';

/** Prints R when ready, then echoes stdin back: `enter … -- cat` with data in and out at once. */
export const ECHO_BACK = ['/bin/sh', '-c', 'echo R; exec cat'];

interface Side {
  onOutput: (data: Uint8Array, stream: 'stdout' | 'stderr') => void;
  write(data: Uint8Array): Promise<void> | undefined;
  endInput(): void;
}

const CHUNK = Buffer.alloc(256 * 1024, 0x78);

/**
 * Feeds `bytes` in 256 KiB writes with backpressure and resolves once as many came back: first
 * write → last byte back. EOF is sent after the window: a WebSocket relay cannot carry a
 * half-close (a close frame ends both directions), so no side's timing depends on one.
 */
async function pump(side: Side, bytes: number): Promise<number> {
  let got = 0;
  const back = new Promise<void>((resolve) => {
    side.onOutput = (data) => {
      got += data.length;
      if (got >= bytes) resolve();
    };
  });
  const t0 = now();
  for (let sent = 0; sent < bytes; sent += CHUNK.length) {
    const wait = side.write(bytes - sent >= CHUNK.length ? CHUNK : CHUNK.subarray(0, bytes - sent));
    if (wait) await wait;
  }
  await back;
  const seconds = Number(now() - t0) / 1e9;
  side.endInput();
  return seconds;
}

export async function entryRun(ctx: BenchContext, bytes: number, meter = new CpuMeter(ctx.broker.pid, ctx.target.id)): Promise<Transfer> {
  const cpu0 = meter.snapshot();
  const s = await EntrySession.open(ctx.broker.wsUrl, ctx.token, ctx.target, { argv: ECHO_BACK.map((a) => Buffer.from(a)), tty: false });
  await untilOutput(s, 0x52);
  const seconds = await pump(s, bytes);
  const code = await s.exit;
  await s.closed;
  if (code !== 0) throw new Error(`cat exited with ${code} through Entry`);
  return { rate: bytes / MB / seconds, cpu: CpuMeter.delta(cpu0, meter.snapshot()) };
}

export async function directRun(docker: Docker, ctx: BenchContext, bytes: number, meter: CpuMeter): Promise<Transfer> {
  const cpu0 = meter.snapshot();
  const d = await DirectExec.open(docker, ctx.target.id, { cmd: ECHO_BACK, tty: false });
  await untilOutput(d, 0x52);
  const seconds = await pump(d, bytes);
  const code = await d.exitCode();
  d.close();
  if (code !== 0) throw new Error(`cat exited with ${code} directly`);
  return { rate: bytes / MB / seconds, cpu: CpuMeter.delta(cpu0, meter.snapshot()) };
}

/**
 * `cat` fed and read back at once, without a TTY: the `enter … -- cat` case, stdin and output
 * through the same hop in both directions; the rate is per direction.
 */
export const roundtripRaw: Suite = {
  names: ['roundtrip_raw'],
  async run(ctx): Promise<Figure[]> {
    const bytes = transferBytes(ctx.quick);
    const reps = ctx.quick ? 2 : 5;
    const runs = await measureSides(ctx, reps, bytes, {
      entry: (n, meter) => entryRun(ctx, n, meter),
      direct: (docker, n, meter) => directRun(docker, ctx, n, meter),
    });
    const f = transferFigure('roundtrip_raw', bytes, runs);
    ctx.log(`roundtrip_raw: entry ${f.entry} MB/s, direct ${f.direct} MB/s, ${JSON.stringify(f.extra)}`);
    return [f];
  },
};

import { DirectExec } from '../direct-exec.js';
import { EntrySession, type OutputHandler } from '../entry-client.js';
import type Docker from 'dockerode';
import type { BenchContext, Figure, FigureName, Suite } from '../figure.js';
import { CpuMeter, MB } from '../proc-stats.js';
import { now } from '../stats.js';
import { untilOutput } from './echo.js';
import { measureSides, type Transfer, transferBytes, transferFigure } from './throughput.js';

/** Prints R when ready, then swallows stdin. */
export const SINK = ['/bin/sh', '-c', 'echo R; exec cat > /dev/null'];
const CHUNK = Buffer.alloc(256 * 1024, 0x78);

export interface Writer {
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

/**
 * The measured window of a stdin transfer: writes `bytes` and resolves with its seconds. `exit`
 * gives the exit code, for a window that ends with it.
 */
export type TimeInput = (side: Writer & { onOutput: OutputHandler }, bytes: number, exit: () => Promise<number>) => Promise<number>;

/** `cat` behind `argv`, which prints R when ready, fed without a TTY through Entry. */
export async function entryInput(ctx: BenchContext, argv: string[], time: TimeInput, bytes: number, meter: CpuMeter): Promise<Transfer> {
  const cpu0 = meter.snapshot();
  const s = await EntrySession.open(ctx.broker.wsUrl, ctx.token, ctx.target, { argv: argv.map((a) => Buffer.from(a)), tty: false });
  await untilOutput(s, 0x52);
  const seconds = await time(s, bytes, () => s.exit);
  const code = await s.exit;
  await s.closed;
  if (code !== 0) throw new Error(`cat exited with ${code} through Entry`);
  return { rate: bytes / MB / seconds, cpu: CpuMeter.delta(cpu0, meter.snapshot()) };
}

/** The same straight to Docker through the given client. */
export async function directInput(docker: Docker, ctx: BenchContext, argv: string[], time: TimeInput, bytes: number, meter: CpuMeter): Promise<Transfer> {
  const cpu0 = meter.snapshot();
  const d = await DirectExec.open(docker, ctx.target.id, { cmd: argv, tty: false });
  await untilOutput(d, 0x52);
  // Asked of Docker once, whether or not the window waited for it.
  let exit: Promise<number> | undefined;
  const exitCode = () => (exit ??= d.exitCode());
  const seconds = await time(d, bytes, exitCode);
  const code = await exitCode();
  d.close();
  if (code !== 0) throw new Error(`cat exited with ${code} directly`);
  return { rate: bytes / MB / seconds, cpu: CpuMeter.delta(cpu0, meter.snapshot()) };
}

/** A stdin transfer figure on every side: `argv` as in entryInput, its window timed by `time`. */
export function inputSuite(name: FigureName, argv: string[], time: TimeInput): Suite {
  return {
    names: [name],
    async run(ctx): Promise<Figure[]> {
      const bytes = transferBytes(ctx.quick);
      const reps = ctx.quick ? 2 : 5;
      const runs = await measureSides(ctx, reps, bytes, {
        entry: (n, meter) => entryInput(ctx, argv, time, n, meter),
        direct: (docker, n, meter) => directInput(docker, ctx, argv, time, n, meter),
      });
      const f = transferFigure(name, bytes, runs);
      ctx.log(`${name}: entry ${f.entry} MB/s, direct ${f.direct} MB/s, ${JSON.stringify(f.extra)}`);
      return [f];
    },
  };
}

/** From the first byte written to the exit code arriving. */
const untilExit: TimeInput = async (side, bytes, exit) => {
  const t0 = now();
  await feed(side, bytes);
  await exit();
  return Number(now() - t0) / 1e9;
};

export function entryRun(ctx: BenchContext, bytes: number, meter = new CpuMeter(ctx.broker.pid, ctx.target.id)): Promise<Transfer> {
  return entryInput(ctx, SINK, untilExit, bytes, meter);
}

export const stdinRaw = inputSuite('stdin_raw', SINK, untilExit);

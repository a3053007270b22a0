import { now } from '../stats.js';
import type { BenchContext } from '../figure.js';
import { CpuMeter } from '../proc-stats.js';
import { entryInput, inputSuite, type TimeInput } from './stdin.js';
import type { Transfer } from './throughput.js';

/** Prints R when ready, then echoes stdin back: `enter … -- cat` with data in and out at once. */
export const ECHO_BACK = ['/bin/sh', '-c', 'echo R; exec cat'];

const CHUNK = Buffer.alloc(256 * 1024, 0x78);

/**
 * Feeds `bytes` in 256 KiB writes with backpressure and resolves once as many came back: first
 * write → last byte back. EOF is sent after the window: a WebSocket relay cannot carry a
 * half-close (a close frame ends both directions), so no side's timing depends on one.
 */
const pump: TimeInput = async (side, bytes) => {
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
};

/**
 * `cat` fed and read back at once, without a TTY: the `enter … -- cat` case, stdin and output
 * through the same hop in both directions; the rate is per direction.
 */
export const roundtripRaw = inputSuite('roundtrip_raw', ECHO_BACK, pump);

/** The Entry side alone (the profiler's workload). */
export function entryRoundtrip(ctx: BenchContext, bytes: number): Promise<Transfer> {
  return entryInput(ctx, ECHO_BACK, pump, bytes, new CpuMeter(ctx.broker.pid, ctx.target.id));
}

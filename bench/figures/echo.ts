import { DirectExec } from '../direct-exec.js';
import { EntrySession, type OutputHandler } from '../entry-client.js';
import { figure, type Figure, type Suite } from '../figure.js';
import { msSince, now, quantile } from '../stats.js';

/** A raw-mode terminal that echoes each byte at once: `cat` reads and writes one byte. */
export const RAW_ECHO = ['/bin/sh', '-c', 'stty raw -echo && printf R && exec cat'];

export interface Typist {
  onOutput: OutputHandler;
  send(data: Uint8Array): void;
}

/** Resolves once `marker` has been printed (the terminal is in raw mode). */
export function untilOutput(side: Typist, marker: number, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no ready marker from the echo process')), timeoutMs);
    side.onOutput = (data) => {
      if (data.includes(marker)) {
        clearTimeout(timer);
        side.onOutput = () => undefined;
        resolve();
      }
    };
  });
}

/** One keystroke: time from sending the byte to its echo arriving, in ms. */
export function echoOnce(side: Typist, byte: Uint8Array): Promise<number> {
  return new Promise((resolve) => {
    const want = byte[0]!;
    const t0 = now();
    side.onOutput = (data) => {
      if (data.includes(want)) {
        side.onOutput = () => undefined;
        resolve(msSince(t0));
      }
    };
    side.send(byte);
  });
}

const KEYS = Array.from({ length: 26 }, (_, i) => Uint8Array.of(0x61 + i));

export const echo: Suite = {
  names: ['echo_p50', 'echo_p99'],
  async run(ctx): Promise<Figure[]> {
    const samples = ctx.quick ? 400 : 3000;
    const entry = await EntrySession.open(ctx.broker.wsUrl, ctx.token, ctx.target, { argv: RAW_ECHO.map((a) => Buffer.from(a)), tty: true, cols: 80, rows: 24 });
    const entryReady = untilOutput(entry, 0x52);
    const direct = await DirectExec.open(ctx.docker, ctx.target.id, { cmd: RAW_ECHO, tty: true });
    await Promise.all([entryReady, untilOutput(direct, 0x52)]);
    try {
      // Warm-up, untimed: JIT and socket paths on both sides.
      for (let i = 0; i < 50; i++) {
        await echoOnce(entry, KEYS[i % 26]!);
        await echoOnce(direct, KEYS[i % 26]!);
      }
      const e: number[] = [];
      const d: number[] = [];
      // Sequential, one byte at a time, alternating which side goes first.
      for (let i = 0; i < samples; i++) {
        const key = KEYS[i % 26]!;
        if (i % 2 === 0) {
          e.push(await echoOnce(entry, key));
          d.push(await echoOnce(direct, key));
        } else {
          d.push(await echoOnce(direct, key));
          e.push(await echoOnce(entry, key));
        }
      }
      ctx.log(`echo: entry p50 ${quantile(e, 0.5).toFixed(3)} p99 ${quantile(e, 0.99).toFixed(3)} ms; direct p50 ${quantile(d, 0.5).toFixed(3)} p99 ${quantile(d, 0.99).toFixed(3)} ms`);
      return [
        figure('echo_p50', 'ms', samples, quantile(e, 0.5), quantile(d, 0.5), { added: true }),
        figure('echo_p99', 'ms', samples, quantile(e, 0.99), quantile(d, 0.99), { added: true, extra: { entry_max: Math.max(...e), direct_max: Math.max(...d) } }),
      ];
    } finally {
      entry.close();
      direct.close();
      await entry.closed;
    }
  },
};

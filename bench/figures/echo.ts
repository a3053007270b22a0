import { DirectExec } from '../direct-exec.js';
import { EntrySession, type OutputHandler } from '../entry-client.js';
import { figure, type Figure, type Suite } from '../figure.js';
import { msSince, now, quantile, sleep } from '../stats.js';

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

/**
 * Ready for typing through a relay: the marker, or a second after the start. Through a relay the
 * marker can come in the same read as the upgrade answer, which docker-modem drops; a second
 * after the start the terminal is raw all the same.
 */
export async function untilRelayedReady(side: Typist): Promise<void> {
  await Promise.race([untilOutput(side, 0x52).catch(() => undefined), sleep(1_000)]);
  side.onOutput = () => undefined;
}

/**
 * Echo times in ms, a list per side: 50 untimed keystrokes each first (JIT and socket paths),
 * then `samples` rounds of one byte at a time, rotating which side goes first.
 */
export async function echoRounds(sides: readonly Typist[], samples: number): Promise<number[][]> {
  for (let i = 0; i < 50; i++) for (const side of sides) await echoOnce(side, KEYS[i % 26]!);
  const out = sides.map((): number[] => []);
  for (let i = 0; i < samples; i++) {
    const key = KEYS[i % 26]!;
    for (let k = 0; k < sides.length; k++) {
      const j = (i + k) % sides.length;
      out[j]!.push(await echoOnce(sides[j]!, key));
    }
  }
  return out;
}

export const echo: Suite = {
  names: ['echo_p50', 'echo_p99'],
  async run(ctx): Promise<Figure[]> {
    const samples = ctx.quick ? 400 : 3000;
    const entry = await EntrySession.open(ctx.broker.wsUrl, ctx.token, ctx.target, { argv: RAW_ECHO.map((a) => Buffer.from(a)), tty: true, cols: 80, rows: 24 });
    const entryReady = untilOutput(entry, 0x52);
    const direct = await DirectExec.open(ctx.docker, ctx.target.id, { cmd: RAW_ECHO, tty: true });
    const directReady = untilOutput(direct, 0x52);
    // The same direct exec through the WebSocket null relay: the ceiling for any broker.
    const relayed = await DirectExec.open(ctx.wsRelay.docker, ctx.target.id, { cmd: RAW_ECHO, tty: true });
    const relayedReady = untilRelayedReady(relayed);
    await Promise.all([entryReady, directReady, relayedReady]);
    try {
      const [e, d, w] = (await echoRounds([entry, direct, relayed], samples)) as [number[], number[], number[]];
      const q = (x: number[], p: number) => quantile(x, p).toFixed(3);
      ctx.log(`echo: entry p50 ${q(e, 0.5)} p99 ${q(e, 0.99)} ms; direct p50 ${q(d, 0.5)} p99 ${q(d, 0.99)} ms; ws relay p50 ${q(w, 0.5)} p99 ${q(w, 0.99)} ms`);
      const relayExtra = (p: number) => ({ ws_relay_ms: quantile(w, p), entry_minus_ws_relay_ms: quantile(e, p) - quantile(w, p) });
      return [
        figure('echo_p50', 'ms', samples, quantile(e, 0.5), quantile(d, 0.5), { added: true, extra: relayExtra(0.5) }),
        figure('echo_p99', 'ms', samples, quantile(e, 0.99), quantile(d, 0.99), {
          added: true,
          extra: { ...relayExtra(0.99), ws_relay_p99_ms: quantile(w, 0.99), entry_max: Math.max(...e), direct_max: Math.max(...d), ws_relay_max: Math.max(...w) },
        }),
      ];
    } finally {
      entry.close();
      direct.close();
      relayed.close();
      await entry.closed;
    }
  },
};

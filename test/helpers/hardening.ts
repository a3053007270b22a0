import { ResponseType } from '../../proto/codec.js';
import { openCommand } from './sessions.js';
import type { WireClient } from './wire-client.js';

export interface Target {
  app: string;
  proc: string;
  instance: string | number;
}

/** Status of GET /healthz, or 0 when the broker does not answer at all. */
export async function healthz(url: string): Promise<number> {
  try {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** The exit code from a protocol-2 EXIT message, if one came. */
export function exitCodeOf(c: WireClient): number | undefined {
  const exit = c.messages.find((m) => m.msgType === ResponseType.EXIT);
  return exit ? Number(new TextDecoder().decode(exit.content)) : undefined;
}

/** Text of the CLOSE message, '' when none came. */
export function closeTextOf(c: WireClient): string {
  return new TextDecoder().decode(c.closeMessage()?.content ?? new Uint8Array());
}

/**
 * A normal client's round trip: connect, run `echo ok`, read EXIT and CLOSE. Throws unless the
 * output is exactly "ok\n" and the exit code 0; returns the milliseconds it took.
 */
export async function timedEcho(wsUrl: string, token: string, target: Target): Promise<number> {
  return (await timedEchoPhases(wsUrl, token, target)).totalMs;
}

/**
 * `timedEcho`, with the time until the broker took the connection (the upgrade answered) apart
 * from the whole: what is queued at the front door shows in the first, an engine slow to run
 * the exec only in the second.
 */
export async function timedEchoPhases(wsUrl: string, token: string, target: Target): Promise<{ admittedMs: number; totalMs: number }> {
  const start = performance.now();
  const c = await openCommand(wsUrl, token, target, ['echo', 'ok']);
  const admittedMs = performance.now() - start;
  const closed = await c.closed;
  const totalMs = performance.now() - start;
  const code = exitCodeOf(c);
  if (c.stdoutText() !== 'ok\n' || code !== 0 || closed.code !== 1000) {
    throw new Error(`echo ok failed: stdout=${JSON.stringify(c.stdoutText())} exit=${code} close=${closed.code} ${JSON.stringify(closeTextOf(c))}`);
  }
  return { admittedMs, totalMs };
}

/** Resolves `work` or rejects after `ms`, naming `what`. */
export function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Runs `task` over `items` with at most `width` in flight. */
export async function inPool<T, R>(items: readonly T[], width: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return results;
}

export const mb = (bytes: number) => (bytes / (1024 * 1024)).toFixed(1);

/** The one summary line a hardening suite prints: `name: key=value …`. */
export function summaryLine(name: string, figures: Record<string, string | number>): string {
  return `${name}: ${Object.entries(figures)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`;
}

/** Small deterministic PRNG (sfc32), so a failing fuzz run can be replayed from its seed. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor((this.u32() / 0x1_0000_0000) * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.u32();
      out[i] = v & 0xff;
      if (i + 1 < n) out[i + 1] = (v >>> 8) & 0xff;
      if (i + 2 < n) out[i + 2] = (v >>> 16) & 0xff;
      if (i + 3 < n) out[i + 3] = v >>> 24;
    }
    return out;
  }
}

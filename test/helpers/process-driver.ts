import type { EntryError } from '../../broker/errors.js';
import type { ProcessSide } from '../../broker/session/types.js';

/** What a process side gave back. */
export interface Outcome {
  stdout: Buffer;
  stderr: Buffer;
  result: { exitCode: number } | { error: EntryError };
}

/** The exit code, or `error <code>: <message>` when the process side ended without one. */
export const exitOf = (o: Outcome): number | string => ('exitCode' in o.result ? o.result.exitCode : `error ${o.result.error.code}: ${o.result.error.message}`);

/** Drives a process side the way the relay does, collecting everything. */
export function drive(p: ProcessSide) {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  let bytes = 0;
  let resolveDone!: (o: Outcome) => void;
  const done = new Promise<Outcome>((r) => (resolveDone = r));
  const waiters: Array<{ test: (s: string) => boolean; resolve: () => void }> = [];
  const text = () => Buffer.concat(stdout).toString('utf8');
  let drained: (() => void) | undefined;
  p.start({
    output: (stream, data) => {
      (stream === 'stdout' ? stdout : stderr).push(Buffer.from(data));
      bytes += data.length;
      if (waiters.length) {
        const t = text();
        for (const w of [...waiters]) if (w.test(t)) waiters.splice(waiters.indexOf(w), 1) && w.resolve();
      }
    },
    drain: () => drained?.(),
    end: (result) => resolveDone({ stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr), result }),
  });
  return {
    done,
    bytes: () => bytes,
    text,
    /** Resolves when stdout (so far) contains `want`, or matches it when a test. */
    until: (want: string | ((s: string) => boolean), ms = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const test = typeof want === 'string' ? (s: string) => s.includes(want) : want;
        if (test(text())) return resolve();
        const what = typeof want === 'string' ? `showed ${JSON.stringify(want)}` : 'matched';
        const timer = setTimeout(() => reject(new Error(`output never ${what}; got ${JSON.stringify(text().slice(-300))}`)), ms);
        waiters.push({ test, resolve: () => (clearTimeout(timer), resolve()) });
      }),
    /** Resolves at the process side's next `drain`. */
    drained: () => new Promise<void>((r) => (drained = r)),
    /** Writes stdin honouring backpressure. */
    async writeAll(data: Buffer, chunk = 64 * 1024) {
      for (let i = 0; i < data.length; i += chunk) {
        if (!p.write(data.subarray(i, i + chunk))) await new Promise<void>((r) => (drained = r));
      }
    },
  };
}

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SCAN_SCRIPT, sessionMark } from '../../broker/backend/session-mark.js';

/*
 * SCAN_SCRIPT run by BusyBox's sh (what the images have) against this machine's /proc, on
 * processes started here with marked environments. The marks are random: nothing else on the
 * machine carries them, so the scans signal only what these tests started.
 */

const started: ChildProcess[] = [];

afterEach(() => {
  for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** A `sleep` whose whole environment is `env` (and PATH); resolves once it has exec'd. */
async function sleeper(env: Record<string, string>): Promise<ChildProcess & { pid: number }> {
  const child = spawn('sleep', ['300'], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env }, stdio: 'ignore' });
  started.push(child);
  if (child.pid === undefined) throw new Error('sleep did not start');
  await new Promise<void>((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  return child as ChildProcess & { pid: number };
}

/** Runs the scan: its stdout, trimmed, and exit code. */
function scan(signal: string, marks: string[]): Promise<{ out: string; code: number }> {
  return new Promise((resolve) => {
    execFile('busybox', ['sh', '-c', SCAN_SCRIPT, 'entry-reaper', signal, ...marks], (err, stdout) => {
      resolve({ out: stdout.trim(), code: err ? Number((err as { code?: number }).code ?? -1) : 0 });
    });
  });
}

const gone = (c: ChildProcess) => new Promise<string | null>((r) => (c.exitCode !== null || c.signalCode !== null ? r(c.signalCode) : c.once('exit', (_code, sig) => r(sig))));
const id = () => `t-${randomBytes(6).toString('hex')}`;

describe('the reaper scan with several marks', () => {
  it('prints one count per mark, in order, and signals only whole-entry matches', async () => {
    const [a, b, c, prefix] = [id(), id(), id(), id()];
    const a1 = await sleeper({ ENTRY_SESSION: a });
    const a2 = await sleeper({ ENTRY_SESSION: a, OTHER: 'x' });
    const b1 = await sleeper({ ENTRY_SESSION: b });
    // Not of any session scanned: a longer id that starts with one, the mark inside another
    // variable's value, and a process whose environment was cleared.
    const longer = await sleeper({ ENTRY_SESSION: `${prefix}0` });
    const inside = await sleeper({ NOTE: sessionMark(c) });
    const cleared = await sleeper({});

    expect(await scan('0', [sessionMark(a), sessionMark(b), sessionMark(c), sessionMark(prefix)])).toEqual({ out: '2 1 0 0', code: 0 });
    expect(await scan('TERM', [sessionMark(c), sessionMark(a)])).toEqual({ out: '0 2', code: 0 });
    expect(await gone(a1)).toBe('SIGTERM');
    expect(await gone(a2)).toBe('SIGTERM');
    for (const alive of [b1, longer, inside, cleared]) expect(alive.exitCode === null && alive.signalCode === null && process.kill(alive.pid, 0)).toBe(true);
    expect(await scan('0', [sessionMark(a), sessionMark(b)])).toEqual({ out: '0 1', code: 0 });
  });

  it('scans 48 marks of the longest ids in one run, each counted', async () => {
    const ids = Array.from({ length: 48 }, (_, i) => `${String(i).padStart(2, '0')}-${randomBytes(31).toString('hex')}`.slice(0, 64));
    const some = [3, 17, 47];
    const kids = await Promise.all(some.map((i) => sleeper({ ENTRY_SESSION: ids[i]! })));
    const want = ids.map((_, i) => (some.includes(i) ? '1' : '0')).join(' ');
    expect(await scan('INT', ids.map(sessionMark))).toEqual({ out: want, code: 0 });
    for (const k of kids) expect(await gone(k)).toBe('SIGINT');
  });

  it('refuses to run without a mark (grep would take a file for the pattern)', async () => {
    const r = await scan('KILL', []);
    expect(r).toEqual({ out: '', code: 2 });
  });

  it('counts what it signalled, not what exited before the kill', async () => {
    const [a, b] = [id(), id()];
    const exited = await sleeper({ ENTRY_SESSION: a });
    const alive = await sleeper({ ENTRY_SESSION: b });
    exited.kill('SIGKILL');
    await gone(exited);
    // Reaped by Node: no /proc entry is left to find.
    await vi.waitFor(() => expect(() => process.kill(exited.pid, 0)).toThrow(), { timeout: 5_000, interval: 10 });
    expect(await scan('HUP', [sessionMark(a), sessionMark(b)])).toEqual({ out: '0 1', code: 0 });
    expect(await gone(alive)).toBe('SIGHUP');
  });
});

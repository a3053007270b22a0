import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Limiter } from '../../broker/backend/pacing.js';
import { SCAN_SCRIPT, sessionMark } from '../../broker/backend/session-mark.js';
import { EntryError } from '../../broker/errors.js';
import { execPath, type ExecTarget } from '../../broker/kubernetes/exec-socket.js';
import { MAX_MARKS_PER_SCAN, ScanBatches } from '../../broker/kubernetes/scan-batches.js';

/*
 * The batching of the reaper's scans, each scan run for real by BusyBox's sh against this
 * machine's /proc (the marks are random, so only the processes started here carry them).
 */

const started: ChildProcess[] = [];
afterEach(() => {
  for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

async function sleeper(sessionId: string): Promise<ChildProcess> {
  const child = spawn('sleep', ['300'], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ENTRY_SESSION: sessionId }, stdio: 'ignore' });
  started.push(child);
  await new Promise<void>((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  return child;
}

/** The scan as the reaper runs it, here rather than in a pod; records each run's marks. */
function localScans() {
  const runs: Array<{ pod: string; signal: string; marks: readonly string[] }> = [];
  const run = (t: ExecTarget, signal: string, marks: readonly string[]) =>
    new Promise<number[]>((resolve, reject) => {
      runs.push({ pod: t.pod, signal, marks });
      if (t.pod === 'broken') return reject(new EntryError('ENTRY_CANNOT_REAP', `the scan's /bin/sh cannot run in ${t.namespace}/${t.pod} (exit 127)`));
      execFile('busybox', ['sh', '-c', SCAN_SCRIPT, 'entry-reaper', signal, ...marks], (err, out) => (err ? reject(err) : resolve(out.trim().split(' ').map(Number))));
    });
  return { runs, run };
}

const pod = (name: string): ExecTarget => ({ namespace: 'ns', pod: name, container: 'main' });
const ids = (n: number) => Array.from({ length: n }, () => `b-${randomBytes(6).toString('hex')}`);

describe('ScanBatches', () => {
  it('runs a lone request at once, and coalesces those that come while it runs into one scan, each caller with its own count', async () => {
    const { runs, run } = localScans();
    const batches = new ScanBatches(new Limiter(8), run);
    const sessions = ids(24);
    // Session i has i % 3 processes.
    for (const [i, s] of sessions.entries()) for (let k = 0; k < i % 3; k++) await sleeper(s);
    const first = batches.signal(pod('p'), sessionMark(sessions[0]!), '0');
    await new Promise((r) => setImmediate(r));
    expect(runs.map((r) => r.marks.length)).toEqual([1]);
    const rest = sessions.slice(1).map((s) => batches.signal(pod('p'), sessionMark(s), '0'));
    expect(await Promise.all([first, ...rest])).toEqual(sessions.map((_, i) => i % 3));
    expect(runs.map((r) => r.marks.length)).toEqual([1, 23]);
    // Each in a turn of its own, as sessions' ends come: still one scan while one runs.
    const spread = sessions.map(async (s, i) => {
      await new Promise((r) => setTimeout(r, i));
      return batches.signal(pod('p'), sessionMark(s), '0');
    });
    expect(await Promise.all(spread)).toEqual(sessions.map((_, i) => i % 3));
    expect(runs.length).toBeLessThanOrEqual(2 + 6);
  });

  it('keeps signals and containers apart, and two requests for one mark share its scan', async () => {
    const { runs, run } = localScans();
    const batches = new ScanBatches(new Limiter(8), run);
    const [a, b] = ids(2);
    await sleeper(a!);
    await sleeper(b!);
    const asked = [
      batches.signal(pod('p'), sessionMark(a!), '0'),
      batches.signal(pod('q'), sessionMark(a!), '0'),
      batches.signal(pod('p'), sessionMark(b!), '0'),
      // CONT, not a signal that ends them: its scan runs beside the others', which count `a`.
      batches.signal(pod('p'), sessionMark(a!), 'CONT'),
      batches.signal(pod('p'), sessionMark(b!), '0'),
    ];
    expect(await Promise.all(asked)).toEqual([1, 1, 1, 1, 1]);
    expect(runs.map((r) => `${r.pod} ${r.signal} ${r.marks.join(' ')}`).sort()).toEqual([`p 0 ${sessionMark(a!)} ${sessionMark(b!)}`, `p CONT ${sessionMark(a!)}`, `q 0 ${sessionMark(a!)}`]);
  });

  it(`takes at most ${MAX_MARKS_PER_SCAN} marks a scan`, async () => {
    const { runs, run } = localScans();
    const batches = new ScanBatches(new Limiter(8), run);
    const sessions = ids(2 * MAX_MARKS_PER_SCAN + 5);
    const counts = await Promise.all(sessions.map((s) => batches.signal(pod('p'), sessionMark(s), '0')));
    expect(counts.every((n) => n === 0)).toBe(true);
    expect(runs.map((r) => r.marks.length)).toEqual([MAX_MARKS_PER_SCAN, MAX_MARKS_PER_SCAN, 5]);
  });

  it("fails every caller of a scan that fails, and only those: others' scans go on", async () => {
    const { runs, run } = localScans();
    const batches = new ScanBatches(new Limiter(1), run);
    const [a] = ids(1);
    await sleeper(a!);
    const broken = ids(4).map((s) => batches.signal(pod('broken'), sessionMark(s), 'HUP').then(() => 'ok', (e: EntryError) => e.code));
    const fine = batches.signal(pod('p'), sessionMark(a!), '0');
    expect(await Promise.all(broken)).toEqual(['ENTRY_CANNOT_REAP', 'ENTRY_CANNOT_REAP', 'ENTRY_CANNOT_REAP', 'ENTRY_CANNOT_REAP']);
    expect(await fine).toBe(1);
    expect(runs.filter((r) => r.pod === 'broken').map((r) => r.marks.length)).toEqual([4]);
    // The lane goes on after a failure.
    expect(await batches.signal(pod('broken'), sessionMark(a!), '0').catch((e: EntryError) => e.code)).toBe('ENTRY_CANNOT_REAP');
  });

  it(`keeps a full scan's request line within 8 KiB with 2 KiB of headers, whatever the names`, () => {
    const longest = { namespace: 'n'.repeat(63), pod: 'p'.repeat(253), container: 'c'.repeat(63) };
    const marks = Array.from({ length: MAX_MARKS_PER_SCAN }, () => sessionMark('x'.repeat(64)));
    const line = `GET ${execPath(longest, { command: ['/bin/sh', '-c', SCAN_SCRIPT, 'entry-reaper', 'KILL', ...marks], tty: false, stdin: false })} HTTP/1.1\r\n`;
    expect(line.length + 2048).toBeLessThanOrEqual(8192);
  });
});

import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sessionMark } from '../../broker/backend/session-mark.js';
import { hasMark, ProcReader, scanPidsWithMark, treePidsWithMark } from '../../broker/docker/proc-walk.js';

const started: ChildProcess[] = [];
const byNumber = (a: number, b: number): number => a - b;

function start(argv: string[], env: Record<string, string>): ChildProcess & { pid: number } {
  const child = spawn(argv[0]!, argv.slice(1), { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env }, stdio: 'ignore' });
  started.push(child);
  if (child.pid === undefined) throw new Error(`${argv[0]} did not start`);
  return child as ChildProcess & { pid: number };
}

const commandLine = (pid: number): string => readFileSync(`/proc/${pid}/cmdline`, 'latin1').replaceAll('\0', ' ').trim();

/**
 * A session's shell with two children: one keeps the session's mark, one dropped it (`env -u`).
 * Resolves once both have become their `sleep`s, so the marks seen are final.
 */
async function sessionShell(mark: string): Promise<{ shell: number; marked: number; unmarked: number }> {
  const [name, value] = mark.split('=') as [string, string];
  const shell = start(['/bin/sh', '-c', `sleep 301 & env -u ${name} sleep 302 & wait`], { [name]: value }).pid;
  return vi.waitFor(
    () => {
      const kids = new ProcReader().childrenOf(shell);
      const marked = kids.find((p) => commandLine(p) === 'sleep 301');
      const unmarked = kids.find((p) => commandLine(p) === 'sleep 302');
      if (marked === undefined || unmarked === undefined) throw new Error('children not started yet');
      return { shell, marked, unmarked };
    },
    { timeout: 5_000, interval: 10 },
  );
}

afterEach(() => {
  for (const child of started.splice(0)) child.kill('SIGKILL');
});

describe("finding a session's processes in /proc", () => {
  it('matches the mark only as a whole environment entry', () => {
    const needle = Buffer.from('ENTRY_SESSION=abc\0');
    expect(hasMark(Buffer.from('ENTRY_SESSION=abc\0PATH=/bin\0'), needle)).toBe(true);
    expect(hasMark(Buffer.from('PATH=/bin\0ENTRY_SESSION=abc\0'), needle)).toBe(true);
    expect(hasMark(Buffer.from('PATH=/bin\0ENTRY_SESSION=abcd\0'), needle)).toBe(false);
    expect(hasMark(Buffer.from('PATH=/bin\0XENTRY_SESSION=abc\0'), needle)).toBe(false);
    expect(hasMark(Buffer.from('XENTRY_SESSION=abc\0ENTRY_SESSION=abc\0'), needle)).toBe(true);
  });

  it("walks from the session's process to its marked descendants, not to one that dropped the mark", async () => {
    const mark = sessionMark(randomUUID());
    const s = await sessionShell(mark);
    try {
      const found = await treePidsWithMark(Buffer.from(`${mark}\0`), s.shell, 0);
      expect(found.sort(byNumber)).toEqual([s.shell, s.marked].sort(byNumber));
    } finally {
      for (const pid of [s.marked, s.unmarked]) process.kill(pid, 'SIGKILL');
    }
  });

  it("finds what a session left behind among init's children, and nothing of another session", async () => {
    const mark = sessionMark(randomUUID());
    const s = await sessionShell(mark);
    // This test process stands in for the container's init: its children are where orphans land.
    const [name, value] = mark.split('=') as [string, string];
    const orphan = start(['sleep', '303'], { [name]: value }).pid;
    const stranger = start(['sleep', '304'], { [name]: `${value}-other` }).pid;
    try {
      const found = await treePidsWithMark(Buffer.from(`${mark}\0`), s.shell, process.pid);
      expect(found.sort(byNumber)).toEqual([s.shell, s.marked, orphan].sort(byNumber));
      expect(found).not.toContain(stranger);
    } finally {
      for (const pid of [s.marked, s.unmarked]) process.kill(pid, 'SIGKILL');
    }
  });

  it('scans the whole cgroup when there is no tree to walk, and finds the same processes', async () => {
    const mark = sessionMark(randomUUID());
    const s = await sessionShell(mark);
    try {
      const found = await scanPidsWithMark(Buffer.from(`${mark}\0`), process.pid);
      expect(found.sort(byNumber)).toEqual([s.shell, s.marked].sort(byNumber));
    } finally {
      for (const pid of [s.marked, s.unmarked]) process.kill(pid, 'SIGKILL');
    }
  });
});

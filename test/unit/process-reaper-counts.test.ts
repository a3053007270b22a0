import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type Docker from 'dockerode';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sessionMark } from '../../broker/backend/session-mark.js';
import { ProcessReaper } from '../../broker/docker/process-reaper.js';

const started: ChildProcess[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const child of started.splice(0)) child.kill('SIGKILL');
});

/** No engine: the container's init cannot be looked up, so host mode scans from the exec's own PID. */
const noEngine = {} as Docker;

describe("counting a session's processes in host mode", () => {
  it('counts one that ended between the walk and its signal, so that another pass looks for what it forked first', async () => {
    const session = randomUUID();
    const [name, value] = sessionMark(session).split('=') as [string, string];
    const child = spawn('sleep', ['313'], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', [name]: value }, stdio: 'ignore' });
    started.push(child);
    const pid = child.pid!;
    const reaper = new ProcessReaper(noEngine, 'host');
    expect(await reaper.signal('c0ffee', session, 0 as unknown as NodeJS.Signals, pid)).toBe(1);

    // The walk finds it; by the time it is signalled it has ended (staged: the kernel says so).
    const kill = process.kill.bind(process);
    vi.spyOn(process, 'kill').mockImplementation((target, signal) => {
      if (target === pid) throw Object.assign(new Error(`kill ESRCH`), { code: 'ESRCH' });
      return kill(target, signal);
    });
    expect(await reaper.signal('c0ffee', session, 'SIGKILL', pid)).toBe(1);
    expect(await reaper.alive('c0ffee', session, pid)).toBe(true);
  });
});

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sessionMark } from '../../broker/backend/session-mark.js';
import { hasMark, hasVariables, type MarkRead, ProcReader, scanPidsWithMark, treePidsWithMark } from '../../broker/docker/proc-walk.js';
import { processStartTicks } from '../../broker/proc-stat.js';

const started: ChildProcess[] = [];
const byNumber = (a: number, b: number): number => a - b;

function start(argv: string[], env: Record<string, string>, stdin: 'ignore' | 'pipe' = 'ignore'): ChildProcess & { pid: number } {
  const child = spawn(argv[0]!, argv.slice(1), { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env }, stdio: [stdin, 'ignore', 'ignore'] });
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

/** A process carrying `mark` that replaces itself with a new shell, over and over: always somewhere in an execve. */
function execLoop(mark: string): number {
  const [name, value] = mark.split('=') as [string, string];
  const loop = 'exec /bin/sh -c "$0" "$0"';
  return start(['/bin/sh', '-c', loop, loop], { [name]: value }).pid;
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
      expect(found!.sort(byNumber)).toEqual([s.shell, s.marked].sort(byNumber));
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
      expect(found!.sort(byNumber)).toEqual([s.shell, s.marked, orphan].sort(byNumber));
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

  it('reads a process inside an execve as not settled yet, never as unmarked', async () => {
    const mark = sessionMark(randomUUID());
    const looping = execLoop(mark);
    const other = execLoop(`${mark}-other`);
    const needle = Buffer.from(`${mark}\0`);
    const proc = new ProcReader();
    const reads = { mine: new Map<MarkRead, number>(), other: new Map<MarkRead, number>() };
    for (let i = 0; i < 5_000; i++) {
      for (const [which, pid] of [['mine', looping], ['other', other]] as const) {
        const read = proc.markOf(pid, needle);
        reads[which].set(read, (reads[which].get(read) ?? 0) + 1);
      }
    }
    const seen = JSON.stringify(Object.fromEntries(Object.entries(reads).map(([k, m]) => [k, Object.fromEntries(m)])));
    expect(reads.mine.get('unmarked') ?? 0, seen).toBe(0);
    expect(reads.mine.get('marked') ?? 0, seen).toBeGreaterThan(0);
    expect(reads.other.get('marked') ?? 0, seen).toBe(0);
    expect(reads.other.get('unmarked') ?? 0, seen).toBeGreaterThan(0);
  });

  it('finds a session process that execs in a loop on every walk and every scan', async () => {
    const mark = sessionMark(randomUUID());
    const looping = execLoop(mark);
    const needle = Buffer.from(`${mark}\0`);
    let missedByWalk = 0;
    let missedByScan = 0;
    for (let i = 0; i < 300; i++) {
      if (!(await treePidsWithMark(needle, looping, 0))!.includes(looping)) missedByWalk++;
      if (i % 10 === 0 && !(await scanPidsWithMark(needle, 0)).includes(looping)) missedByScan++;
    }
    expect({ missedByWalk, missedByScan }).toEqual({ missedByWalk: 0, missedByScan: 0 });
  });

  it("waits for an exec that runc is still starting to become the session's command, and no longer than a second", async () => {
    const mark = sessionMark(randomUUID());
    const needle = Buffer.from(`${mark}\0`);
    // What the engine reports as the exec's PID at first: runc's init, in runc's environment.
    const runcInit = { GOMAXPROCS: '4', _LIBCONTAINER_INITPIPE: '4', _LIBCONTAINER_INITTYPE: 'setns' };
    // Held at a line of input until the walk has begun, however slow this machine is meanwhile.
    const becomesChild = start(['/bin/sh', '-c', `read _; exec env ${mark} sleep 307`], runcInit, 'pipe');
    const becomes = becomesChild.pid;
    const never = start(['/bin/sh', '-c', 'exec sleep 308'], runcInit).pid;
    const proc = new ProcReader();
    await vi.waitFor(() => expect(commandLine(never)).toBe('sleep 308'), { timeout: 5_000, interval: 10 });
    expect(proc.markOf(becomes, needle)).toBe('starting');

    const walked = treePidsWithMark(needle, becomes, 0);
    becomesChild.stdin!.end('go\n');
    expect(await walked).toEqual([becomes]);
    expect(commandLine(becomes)).toBe('sleep 307');
    const t0 = performance.now();
    expect(await treePidsWithMark(needle, never, 0)).toEqual([]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(1_000);
    expect(performance.now() - t0).toBeLessThan(3_000);
  });

  it("does not wait for a process in runc's environment that is not the exec's own", async () => {
    const mark = sessionMark(randomUUID());
    const needle = Buffer.from(`${mark}\0`);
    const [name, value] = mark.split('=') as [string, string];
    // Anyone can put runc's variables in an environment; this test process stands in for init.
    const lookalike = start(['sleep', '309'], { _LIBCONTAINER_INITTYPE: 'setns' }).pid;
    const orphan = start(['sleep', '310'], { [name]: value }).pid;
    await vi.waitFor(() => expect(commandLine(lookalike)).toBe('sleep 309'), { timeout: 5_000, interval: 10 });
    // Waiting on the lookalike would take the whole second a starting exec is given, per call.
    let t0 = performance.now();
    expect(await treePidsWithMark(needle, 0, process.pid)).toEqual([orphan]);
    expect(performance.now() - t0).toBeLessThan(1_000);
    t0 = performance.now();
    expect(await scanPidsWithMark(needle, process.pid)).toEqual([orphan]);
    expect(performance.now() - t0).toBeLessThan(1_000);
  });

  it.each([
    ['a walk of the tree', (needle: Buffer) => treePidsWithMark(needle, 0, process.pid)],
    ['a scan of the cgroup', (needle: Buffer) => scanPidsWithMark(needle, process.pid)],
  ])("in %s, finds a child handed to init by a process that ended after init's children were read", async (_how, find) => {
    const mark = sessionMark(randomUUID());
    const [name, value] = mark.split('=') as [string, string];
    // This test process stands in for init. `parent` is among its children when the walk lists them.
    const parent = start(['sleep', '311'], {}).pid;
    let handedOver = 0;
    const read = ProcReader.prototype.markOf;
    // Staged at the moment the walk reaches `parent`: it forks a marked child and ends (a
    // subshell's `(cmd &)`), the child landing on init after the walk read init's children.
    const spy = vi.spyOn(ProcReader.prototype, 'markOf').mockImplementation(function (this: ProcReader, pid, needle, inTree) {
      if (pid === parent && handedOver === 0) {
        handedOver = start(['sleep', '312'], { [name]: value }).pid;
        process.kill(parent, 'SIGKILL');
        const until = Date.now() + 5_000;
        while (!/\) Z /.test(readFileSync(`/proc/${parent}/stat`, 'latin1')) && Date.now() < until);
      }
      return read.call(this, pid, needle, inTree);
    });
    try {
      const found = await find(Buffer.from(`${mark}\0`));
      expect(handedOver).toBeGreaterThan(0);
      expect(found).toEqual([handedOver]);
    } finally {
      spy.mockRestore();
    }
  });

  it('takes an empty environment and a kernel thread as unmarked, and a zombie or a process gone as ended, without waiting on them', async () => {
    const needle = Buffer.from(`${sessionMark(randomUUID())}\0`);
    const empty = start(['env', '-i', 'sleep', '305'], {}).pid;
    // The shell becomes a sleep that never reaps its child: `true` stays a zombie.
    const parent = start(['/bin/sh', '-c', 'true & exec sleep 306'], {}).pid;
    const zombie = await vi.waitFor(
      () => {
        const kid = new ProcReader().childrenOf(parent)[0];
        if (kid === undefined || !/\) Z /.test(readFileSync(`/proc/${kid}/stat`, 'latin1'))) throw new Error('no zombie yet');
        return kid;
      },
      { timeout: 5_000, interval: 10 },
    );
    await vi.waitFor(() => expect(readFileSync(`/proc/${empty}/environ`).length).toBe(0), { timeout: 5_000, interval: 10 });
    const kthreadd = 2;
    const proc = new ProcReader();
    const gone = spawnSync('true').pid;
    expect([empty, zombie, kthreadd, gone].map((pid) => proc.markOf(pid, needle))).toEqual(['unmarked', 'ended', 'unmarked', 'ended']);
  });

  it('reads a process on its way out, its memory let go but not yet a zombie, as not settled yet, never as unmarked', async () => {
    const mark = sessionMark(randomUUID());
    const [name, value] = mark.split('=') as [string, string];
    // Held on its way out: the init of a PID namespace ends only once every process of the
    // namespace has been reaped, and one entered into it from outside (nsenter forks it there)
    // is its parent's to reap, a parent stopped here. Between the two it has let go of its
    // memory (its environment cannot be read) and is no zombie yet: what any process that
    // exits is for a moment, its children about to be init's.
    // --kill-child: the namespace ends with unshare, which the clean-up kills, whatever happened.
    const unshare = start(['unshare', '--pid', '--fork', '--kill-child', 'sleep', '318'], { [name]: value }).pid;
    const init = await vi.waitFor(() => new ProcReader().childrenOf(unshare)[0] ?? Promise.reject(new Error('no init yet')), { timeout: 5_000, interval: 10 });
    const nsenter = start(['nsenter', '-t', String(init), '-p', '--', 'sleep', '319'], {}).pid;
    const entered = await vi.waitFor(() => new ProcReader().childrenOf(nsenter)[0] ?? Promise.reject(new Error('not entered yet')), { timeout: 5_000, interval: 10 });
    const state = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]![0];
    process.kill(nsenter, 'SIGSTOP');
    try {
      // Stopped, not only sent the signal: one still in its wait when its child dies reaps it first.
      await vi.waitFor(() => expect(state(nsenter)).toBe('T'), { timeout: 5_000, interval: 10 });
      process.kill(entered, 'SIGKILL');
      await vi.waitFor(() => expect(state(entered)).toBe('Z'), { timeout: 5_000, interval: 10 });
      const needle = Buffer.from(`${mark}\0`);
      expect(new ProcReader().markOf(init, needle)).toBe('marked');
      process.kill(init, 'SIGKILL');
      await vi.waitFor(() => expect(() => readFileSync(`/proc/${init}/environ`)).toThrow(), { timeout: 5_000, interval: 10 });
      expect(state(init)).not.toBe('Z');
      expect(new ProcReader().markOf(init, needle)).toBe('unsettled');
    } finally {
      process.kill(nsenter, 'SIGCONT');
    }
  });
});

describe("the exec's own process, whatever its environment", () => {
  it('is the session\'s only while it is the process that started then: a PID given to another exec is not', async () => {
    // A container: a PID namespace whose init is `sleep`. An exec: a process entered into it
    // from outside (nsenter forks it there), its parent outside, its environment empty. The
    // namespace ends with unshare (--kill-child), which the test's clean-up kills: its init
    // would otherwise outlive it, and with the init every process in it.
    const unshare = start(['unshare', '--pid', '--fork', '--kill-child', '--mount-proc', 'sleep', '1051'], {}).pid;
    const init = await vi.waitFor(() => {
      const child = new ProcReader().childrenOf(unshare)[0];
      if (child === undefined || commandLine(child) !== 'sleep 1051') throw new Error('no init yet');
      return child;
    });
    const nsenter = start(['nsenter', '-t', String(init), '-p', '--', 'env', '-i', '/bin/sleep', '1052'], {}).pid;
    const exec = await vi.waitFor(() => {
      const child = new ProcReader().childrenOf(nsenter)[0];
      if (child === undefined || commandLine(child) !== '/bin/sleep 1052') throw new Error('no exec yet');
      return child;
    });
    const needle = Buffer.from(`${sessionMark(randomUUID())}\0`);
    const started = processStartTicks(exec) ?? '';
    expect(started).toMatch(/^\d+$/);
    expect(await treePidsWithMark(needle, exec, init, started)).toEqual([exec]);
    // The same PID with another start time is another process: a health check's exec, another session's.
    expect(await treePidsWithMark(needle, exec, init, String(Number(started) + 1))).toEqual([]);
    expect(await treePidsWithMark(needle, exec, init, '')).toEqual([]);
    // Nor is a process of the container whose parent is inside it.
    expect(await treePidsWithMark(needle, init, init, processStartTicks(init))).toEqual([]);
  });
});

describe('telling an environment written over in place from one cleared on purpose', () => {
  it.each([
    ['NULs only (setproctitle cleared it)', Buffer.alloc(64)],
    ["a title's text and NULs", Buffer.from('redis-server *:6379\0\0\0\0')],
    ['a title with = inside a word', Buffer.from('gunicorn: worker [--bind=0.0.0.0]\0')],
  ])('finds no variable in %s', (_what, env) => {
    expect(hasVariables(env)).toBe(false);
  });

  it.each([
    ['one variable', Buffer.from('PATH=/bin\0')],
    ['a variable after a title', Buffer.from('nginx: master\0HOME=/root\0')],
    ['an empty value', Buffer.from('_=\0')],
    ['no final NUL', Buffer.from('A1=x')],
  ])('finds a variable in %s', (_what, env) => {
    expect(hasVariables(env)).toBe(true);
  });
});

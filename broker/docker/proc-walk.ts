import { readdirSync, readlinkSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { emptyEnvironmentCause, parsePidList, readProcFile } from './proc-file.js';
import { nextTurn } from '../backend/pacing.js';
import { readProcessStat } from '../proc-stat.js';

/*
 * Finding a session's processes in our /proc (the reaper's host mode): by the session mark in
 * their environment, from the session's own roots or, failing those, across the container.
 */

/**
 * The processes of the container that `pid` belongs to, from its cgroup (v2, hybrid or v1):
 * a handful of PIDs instead of every process on the host, and the file they were read from.
 * Undefined when not readable.
 */
async function cgroupPids(pid: number): Promise<{ file: string; pids: number[] } | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return undefined;
  }
  const candidates: string[] = [];
  for (const line of text.split('\n')) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    if (controllers === '') candidates.push(`/sys/fs/cgroup${path}/cgroup.procs`, `/sys/fs/cgroup/unified${path}/cgroup.procs`);
    else if (controllers!.split(',').includes('pids')) candidates.push(`/sys/fs/cgroup/pids${path}/cgroup.procs`);
  }
  for (const file of candidates) {
    const pids = await pidsIn(file);
    if (pids) return { file, pids };
  }
  return undefined;
}

/** The PIDs in a cgroup's `cgroup.procs`; undefined when it cannot be read (not this layout, or removed). */
async function pidsIn(file: string): Promise<number[] | undefined> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter(Boolean).map(Number);
  } catch {
    return undefined;
  }
}

/** Whether the environment read from /proc/<pid>/environ holds `needle` (`MARK\0`) as a whole entry. */
export function hasMark(env: Buffer, needle: Buffer): boolean {
  // The mark may be the first entry; otherwise a NUL precedes it. No copy of the environment.
  for (let at = env.indexOf(needle); at >= 0; at = env.indexOf(needle, at + 1)) {
    if (at === 0 || env[at - 1] === 0) return true;
  }
  return false;
}

/**
 * How long synchronous /proc reads run before the event loop gets a turn. A /proc read takes a
 * few microseconds when the machine is idle, against ~4 thread-pool round trips and a FileHandle
 * through fs/promises (which made the clean-up of a mass disconnect cost more CPU than the
 * relay); on a loaded machine the same read can take 50 µs or more, so the slice is bounded in
 * time rather than in reads: with the reaper's SCAN_CONCURRENCY scans, keystrokes of other
 * sessions wait for at most 8 such slices.
 */
const SLICE_MS = 1;

/**
 * What a process's environment says of the mark. `unsettled`: the process is inside an execve,
 * between the kernel switching it to its new memory and laying out the new environment there;
 * its environment reads as empty for that moment (a fifth of the reads of a process that execs
 * in a loop), and it is the same process, with the same mark, a moment later. Or it is exiting,
 * and a moment later its children, if any, are init's.
 */
/**
 * `ended`: a zombie, or gone. Its children, if it had any, were handed to init (or its
 * subreaper) as it ended, maybe after init's children were read: they are looked for again.
 * `hidden`: not this process's to read (another user's, without CAP_SYS_PTRACE): it may carry the mark.
 * `overwritten`: its environment's memory holds no variable at all: the process wrote over it in
 * place, as setproctitle does (nginx, redis, postgres, gunicorn) to show a longer title; the mark
 * went with it. Told apart only when asked (a process in a session's tree), as it costs a pass.
 */
export type MarkRead = 'marked' | 'unmarked' | 'unsettled' | 'starting' | 'ended' | 'hidden' | 'overwritten';

/**
 * Whether an environment read from /proc holds any `NAME=value` entry. One a process wrote over
 * in place holds NULs and its title's text instead; one cleared on purpose (`env -i`, `su -`) is
 * empty or holds other variables.
 */
export function hasVariables(env: Buffer): boolean {
  for (let at = 0; at < env.length; ) {
    const end = env.indexOf(0, at);
    const stop = end < 0 ? env.length : end;
    if (isVariable(env, at, stop)) return true;
    at = stop + 1;
  }
  return false;
}

function isVariable(env: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = env[i]!;
    if (c === 0x3d) return i > from;
    const letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
    if (!letter && !(i > from && c >= 0x30 && c <= 0x39)) return false;
  }
  return false;
}

/**
 * The environment of runc's init while it joins a container for an exec (`docker exec`), before
 * it execve's the exec's command with the exec's environment. The engine reports the exec's
 * PID from that moment: a walk from it reads runc's environment, not the session's mark, for
 * 0.2–15 ms on an idle machine. It is `starting`: the same process, soon marked. Only the
 * exec's own PID is waited for so: any process can put this in its environment, and another
 * session's exec being started is not this session's.
 */
const RUNC_EXEC_INIT = Buffer.from('_LIBCONTAINER_INITTYPE=setns\0');

/**
 * How long a walk waits for processes caught inside an execve, in steps. The kernel lays out the
 * new environment well under a millisecond after the switch; a process preempted there on a
 * loaded machine takes longer. 63 ms in all, spent only by a walk that caught such a process,
 * and bounded for one that never settles (an exec stuck reading its binary from a hung disk).
 */
const SETTLE_WAITS_MS = [1, 2, 4, 8, 16, 32];

/**
 * How long a walk waits for runc's init to become the exec's command, in steps: 1 s in all. It
 * waits on the engine's runtime (cgroups, namespaces, the console), which a loaded machine
 * slows far more than an execve; spent only by a walk that caught an exec being started.
 */
const STARTING_WAITS_MS = [...SETTLE_WAITS_MS, 64, 128, 256, 512];

/**
 * How many times a walk reads init's children again (a scan, the container's processes) because
 * it met a process that had ended meanwhile. A process that forks and exits (a subshell's
 * `(cmd &)`) hands its child to init as it ends: met ended, its child was in no list the walk
 * had read. Each read takes only the processes not listed before; the bound keeps a loop that
 * forks such children without end from holding a walk: what it forks after is the next pass's.
 */
const ENDED_REREADS = 4;

/** Synchronous /proc reads that hand the event loop back once a slice has run SLICE_MS. */
export class ProcReader {
  private sliceStart = performance.now();

  async yieldIfDue(): Promise<void> {
    if (performance.now() - this.sliceStart < SLICE_MS) return;
    await nextTurn();
    this.sliceStart = performance.now();
  }

  marked(pid: number, needle: Buffer): boolean {
    return this.markOf(pid, needle) === 'marked';
  }

  /** `inTree`: the process is in a session's tree, where an `overwritten` environment is told apart. */
  markOf(pid: number, needle: Buffer, inTree = false): MarkRead {
    // Twice at most: an environment laid out between the read and the look at the cause.
    for (let read = 0; read < 2; read++) {
      let env: Buffer | undefined;
      try {
        env = readProcFile(`/proc/${pid}/environ`);
      } catch (err) {
        if (denied(err)) return 'hidden';
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'ended';
        // Without memory: a zombie, a kernel thread, or one on its way out (whose children are
        // about to be init's). Recent kernels refuse the open for those (ESRCH), older ones read
        // an empty environment: the stat tells them apart either way.
      }
      // A process's environment ends with a NUL, the needle's too, so a longer value never matches.
      if (env !== undefined && env.length > 0) {
        if (hasMark(env, needle)) return 'marked';
        if (hasMark(env, RUNC_EXEC_INIT)) return 'starting';
        return inTree && !hasVariables(env) ? 'overwritten' : 'unmarked';
      }
      const cause = emptyEnvironmentCause(pid);
      if (cause === 'none') return 'unmarked';
      if (cause === 'ended') return 'ended';
      if (cause === 'pending') return 'unsettled';
    }
    return 'unmarked';
  }

  /** The children of `pid`, from every thread's `children` file (a thread may have forked them). */
  childrenOf(pid: number): number[] {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      return [];
    }
    const out: number[] = [];
    for (const tid of tids) {
      try {
        out.push(...parsePidList(readProcFile(`/proc/${pid}/task/${tid}/children`)));
      } catch {
        // Thread or process gone.
      }
    }
    return out;
  }
}

/**
 * The session's processes reached from its own roots: the exec's process (the session's command,
 * whatever its environment now says), its marked descendants, and the marked children of the
 * container's init (where Linux re-parents a process whose parent died, i.e. what a session left
 * behind or double-forked away) with their descendants. Below a session's process, a child
 * whose environment was written over in place (setproctitle) is the session's too: the mark
 * went with the memory, not by choice. Reads only those processes and init's direct children:
 * the cost follows the session, not the other sessions of the container (they hang off the
 * engine's shim, not init) nor the host. Undefined when a process it met was not this
 * process's to read: it may have been one of them.
 */
export async function treePidsWithMark(needle: Buffer, execPid: number, initPid: number, execStart = ''): Promise<number[] | undefined> {
  const marks = new MarkSorter(new ProcReader(), needle, execPid, { initPid, start: execStart });
  const found = new Set<number>();
  const listed = new Set<number>();
  /** `onlyNew`: only those not listed before (a process that ended handed its children over). */
  const initChildren = async (onlyNew = false) => {
    for (const pid of marks.proc.childrenOf(initPid)) {
      await marks.proc.yieldIfDue();
      if (onlyNew && listed.has(pid)) continue;
      listed.add(pid);
      if (pid !== execPid && !found.has(pid)) marks.consider(pid);
    }
  };
  if (execPid > 0) marks.considerExecRoot();
  await initChildren();
  let rereads = 0;
  for (;;) {
    while (marks.marked.length > 0) {
      const frontier = marks.marked.splice(0);
      for (const pid of frontier) {
        if (found.has(pid)) continue;
        found.add(pid);
        // Children inherit the mark; one that dropped it (a clean environment, `env -i`, `su -`)
        // is not the session's to end, one that wrote over it in place is.
        for (const child of marks.proc.childrenOf(pid)) {
          await marks.proc.yieldIfDue();
          if (!found.has(child)) marks.consider(child, true);
        }
      }
    }
    if (marks.takeEnded() && rereads++ < ENDED_REREADS) {
      await initChildren(true);
      continue;
    }
    if (!(await marks.settle())) break;
    // A process that was on its way out has left its children to init by now.
    await initChildren();
  }
  return marks.hidden ? undefined : [...found];
}

/**
 * PIDs carrying the session mark among the container's processes (or all of /proc): when no tree
 * walk is possible. A process it may not read is passed over: a scan meets strangers of every
 * kind (the host's own init among them, in some sandboxes even for root); the tree walk, which
 * meets only the session's own and init's children, is the one that says when it could not see.
 */
export async function scanPidsWithMark(needle: Buffer, anchorPid: number): Promise<number[]> {
  const all = async () => (await readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number);
  const cgroup = anchorPid > 0 ? await cgroupPids(anchorPid) : undefined;
  // Read again from the same cgroup's file, not through the anchor: the anchor may be what
  // ended (the session's shell), and every process of the host would be read for a handful.
  const list = async (first: boolean) => (cgroup ? (first ? cgroup.pids : ((await pidsIn(cgroup.file)) ?? [])) : await all());
  const marks = new MarkSorter(new ProcReader(), needle);
  const listed = new Set<number>();
  // Again, for what a process met ended had started after the list was read (see ENDED_REREADS).
  for (let rereads = 0; rereads === 0 || (marks.takeEnded() && rereads <= ENDED_REREADS); rereads++) {
    for (const pid of await list(rereads === 0)) {
      await marks.proc.yieldIfDue();
      if (listed.has(pid)) continue;
      listed.add(pid);
      marks.consider(pid);
    }
    while (await marks.settle());
  }
  return marks.marked;
}

/** Sorts processes by their mark, holding back those caught inside an execve or an exec's start until they settle. */
class MarkSorter {
  readonly marked: number[] = [];
  /** A process whose environment could not be read was met: the walk cannot say it found them all. */
  hidden = false;
  /** Processes met that had ended, and whether one was met since `takeEnded` was last asked. */
  private readonly ended = new Set<number>();
  private endedUnasked = false;
  /** Processes to read again, and whether each is in a session's tree (see `consider`). */
  private readonly unsettled = new Map<number, boolean>();
  /** Whether the exec was caught being started: the walk then waits by STARTING_WAITS_MS to its end. */
  private starting = false;
  private waits = 0;

  constructor(
    readonly proc: ProcReader,
    private readonly needle: Buffer,
    /** The exec's own PID, the one process that may be waited for as `starting`; 0: none. */
    private readonly execPid = 0,
    /** The container's init, and the exec's process's start time as seen while it ran ('': unknown). */
    private readonly root: { initPid: number; start: string } = { initPid: 0, start: '' },
  ) {}

  /** `inTree`: a child of a session's process, the session's also when its environment was written over. */
  consider(pid: number, inTree = false): void {
    this.sort(pid, this.proc.markOf(pid, this.needle, inTree), inTree);
  }

  /** Whether a process met since the last call had ended: its children may be in no list read yet. */
  takeEnded(): boolean {
    const met = this.endedUnasked;
    this.endedUnasked = false;
    return met;
  }

  private sort(pid: number, read: MarkRead, inTree: boolean): void {
    if (read === 'hidden') this.hidden = true;
    if (read === 'ended' && !this.ended.has(pid)) {
      this.ended.add(pid);
      this.endedUnasked = true;
    }
    if (read === 'marked' || read === 'overwritten') this.marked.push(pid);
    else if (read === 'unsettled' || (read === 'starting' && pid === this.execPid)) {
      this.unsettled.set(pid, inTree);
      if (read === 'starting') this.starting = true;
    }
  }

  /**
   * The exec's own process is the session's whatever its environment says (`env -i cmd`, a
   * title written over it), as long as it still is that process: the PID the engine reported
   * may have been reused since, by another exec into the container (a health check, another
   * session) as much as by anything. It started when that process did (its start time, read
   * while the exec ran), and is in the container's PID namespace with its parent outside it.
   */
  considerExecRoot(): void {
    const pid = this.execPid;
    const read = this.proc.markOf(pid, this.needle);
    if (read === 'unmarked') {
      const { initPid, start } = this.root;
      if (start !== '' && isExecProcessOf(pid, initPid, start)) this.marked.push(pid);
      return;
    }
    this.sort(pid, read, false);
  }

  /**
   * Waits the next step of SETTLE_WAITS_MS (STARTING_WAITS_MS while an exec is being started)
   * and reads the unsettled processes again. False when none is left to wait for (or the steps
   * are spent): those still unsettled are not counted.
   */
  async settle(): Promise<boolean> {
    const steps = this.starting ? STARTING_WAITS_MS : SETTLE_WAITS_MS;
    if (this.unsettled.size === 0 || this.waits >= steps.length) return false;
    await sleep(steps[this.waits++]!);
    const pids = [...this.unsettled];
    this.unsettled.clear();
    for (const [pid, inTree] of pids) {
      if (pid === this.execPid) this.considerExecRoot();
      else this.consider(pid, inTree);
    }
    return true;
  }
}

/**
 * Whether this process may read `pid`'s environment, where the session mark is. A broker running
 * as a user of its own (the systemd unit's) sees the engine's processes in /proc but may not read
 * a root process's environment without CAP_SYS_PTRACE: every process would look unmarked.
 */
export function environmentReadable(pid: number): boolean {
  try {
    readProcFile(`/proc/${pid}/environ`);
    return true;
  } catch {
    return false;
  }
}

function denied(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EACCES' || code === 'EPERM';
}

/**
 * Whether `pid` is the exec's process that started at `start` in the container of `initPid`: in
 * its PID namespace, its parent not, and not ended (a zombie waits only for its parent).
 */
function isExecProcessOf(pid: number, initPid: number, start: string): boolean {
  if (pid === initPid) return false;
  const stat = readProcessStat(pid);
  if (!stat || stat.startTicks !== start || stat.state === 'Z' || stat.state === 'X') return false;
  try {
    const ns = readlinkSync(`/proc/${initPid}/ns/pid`);
    return readlinkSync(`/proc/${pid}/ns/pid`) === ns && readlinkSync(`/proc/${stat.ppid}/ns/pid`) !== ns;
  } catch {
    return false;
  }
}

/** Whether `pid` in our /proc is a container's init: PID 1 of a namespace below ours. */
export function isNamespaceInit(pid: number): boolean {
  try {
    const status = readProcFile(`/proc/${pid}/status`).toString('latin1');
    const nspid = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
    return nspid.length >= 2 && nspid[nspid.length - 1] === '1';
  } catch {
    return false;
  }
}

import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { SCAN_SCRIPT, sessionMark } from '../backend/session-mark.js';
import { EntryError } from '../errors.js';
import { DockerDemuxer } from './demux.js';
import { parsePidList, readProcFile } from './proc-file.js';
import { dockerFailure } from './engine.js';
import { withTimeout } from './with-timeout.js';

/**
 * Docker has no API to kill an exec, and closing its stream does not end it. Every process a
 * session starts carries `ENTRY_SESSION=<id>` in its environment (children inherit it), so the
 * reaper finds them by that mark and signals them:
 *  - host mode: whenever the broker sees the engine's processes (it shares the engine's PID
 *    namespace or an ancestor of it: the exec's host PID, or the container's init, is in our
 *    /proc), it scans the container's processes itself: works in any image;
 *  - exec mode: otherwise it runs a short `sh` script in the container that does the same
 *    scan there: needs sh, tr, grep and kill in the image.
 */
export type ReapMode = 'auto' | 'host' | 'exec';

/**
 * The processes of the container that `pid` belongs to, from its cgroup (v2, hybrid or v1):
 * a handful of PIDs instead of every process on the host. Undefined when not readable.
 */
async function cgroupPids(pid: number): Promise<number[] | undefined> {
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
    try {
      return (await readFile(file, 'utf8')).split('\n').filter(Boolean).map(Number);
    } catch {
      // Not this layout.
    }
  }
  return undefined;
}

/** Whether the environment read from /proc/<pid>/environ holds `needle` (`MARK\0`) as a whole entry. */
function hasMark(env: Buffer, needle: Buffer): boolean {
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
 * time rather than in reads: with SCAN_CONCURRENCY scans, keystrokes of other sessions wait for
 * at most 8 such slices.
 */
const SLICE_MS = 1;

/** Synchronous /proc reads that hand the event loop back once a slice has run SLICE_MS. */
class ProcReader {
  private sliceStart = performance.now();

  async yieldIfDue(): Promise<void> {
    if (performance.now() - this.sliceStart < SLICE_MS) return;
    await new Promise<void>((r) => setImmediate(r));
    this.sliceStart = performance.now();
  }

  marked(pid: number, needle: Buffer): boolean {
    try {
      // A process's environment ends with a NUL, the needle's too, so a longer value never matches.
      return hasMark(readProcFile(`/proc/${pid}/environ`), needle);
    } catch {
      return false;
    }
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
 * The session's processes reached from its own roots: the marked descendants of the exec's
 * process, and the marked children of the container's init (where Linux re-parents a process
 * whose parent died, i.e. what a session left behind or double-forked away) with their
 * descendants. Reads only those processes and init's direct children: the cost follows the
 * session, not the other sessions of the container (they hang off the engine's shim, not
 * init) nor the host.
 */
async function treePidsWithMark(needle: Buffer, execPid: number, initPid: number): Promise<number[]> {
  const proc = new ProcReader();
  const found = new Set<number>();
  let frontier: number[] = [];
  if (execPid > 0 && proc.marked(execPid, needle)) frontier.push(execPid);
  for (const pid of proc.childrenOf(initPid)) {
    await proc.yieldIfDue();
    if (pid !== execPid && proc.marked(pid, needle)) frontier.push(pid);
  }
  while (frontier.length > 0) {
    const next: number[] = [];
    for (const pid of frontier) {
      if (found.has(pid)) continue;
      found.add(pid);
      // Children inherit the mark; one that dropped it is not the session's to end.
      for (const child of proc.childrenOf(pid)) {
        await proc.yieldIfDue();
        if (!found.has(child) && proc.marked(child, needle)) next.push(child);
      }
    }
    frontier = next;
  }
  return [...found];
}

/** PIDs carrying the session mark among the container's processes (or all of /proc): when no tree walk is possible. */
async function scanPidsWithMark(needle: Buffer, anchorPid: number): Promise<number[]> {
  const pids = (anchorPid > 0 ? await cgroupPids(anchorPid) : undefined) ?? (await readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number);
  const proc = new ProcReader();
  const found: number[] = [];
  for (const pid of pids) {
    await proc.yieldIfDue();
    if (proc.marked(pid, needle)) found.push(pid);
  }
  return found;
}

/**
 * Session scans running at once. When every client vanishes together (a load balancer
 * restart) each session's clean-up would otherwise start together too: a few in flight keep
 * the libuv pool (4 threads, shared with the broker's other file work) and the engine's API
 * from being flooded, and let the relay's own I/O in between. 8 = twice the pool's threads,
 * so it never idles while one scan awaits the engine.
 */
const SCAN_CONCURRENCY = 8;

/**
 * Client signals (SIGNAL) delivered at once, across sessions. They have a lane of their own so
 * that no number of them can delay a session's clean-up in SCAN_CONCURRENCY's queue; each session
 * has at most one in this lane (see SignalLane), so its queue is bounded by the sessions. 2: a
 * delivery is one /proc walk or one short exec (tens of ms), so two lanes pass dozens of Ctrl-Cs
 * a second for the whole broker, while taking at most half the libuv pool's 4 threads and a
 * quarter of what the clean-up may put on the engine at once.
 */
const SIGNAL_CONCURRENCY = 2;

/**
 * Sessions whose clean-up may start per second. Ending a session wakes the engine (the exec's
 * stream closes, its processes exit and are reaped by the shim, dockerd reports it) as well as
 * the broker; started all at once after a load balancer restart, that burst takes the cores
 * from the sessions still typing. Paced at 200 a second, 1,000 sessions dropped together are
 * all being ended within 5 s, half the 10 s target, and a single session waits 0.
 */
const CLEANUP_STARTS_PER_SECOND = 200;

/**
 * How long a container's init, once confirmed, is taken as still being it. Every signal and
 * poll of every ending session checked it again (a /proc read and a parse: in a mass
 * disconnect one read in five of the reaper's, beside its walks). Within this time a restarted
 * container's old PID can only make a walk miss the session's orphans, never signal a
 * stranger: only processes carrying the session's mark are signalled.
 */
const INIT_RECHECK_MS = 1_000;

/**
 * A container's init not asked about for this long is forgotten (one inspect brings it back):
 * containers come and go, and the cache keeps only those whose sessions ended lately. The
 * sweep runs at most once per this time, so it costs one pass over the cache per minute.
 */
const INIT_FORGET_MS = 60_000;

/**
 * How long the in-container scan (exec mode) may take before it is abandoned. It reads every
 * process's environment with one `grep` and forks a `tr` and a `grep` only for the candidates
 * (see SCAN_SCRIPT): 8 scans at once, each a `docker exec`, in a container of 37 processes
 * starting 60 a second took 1.6 s on a loaded 2-core host, so 10 s leaves room for a host
 * several times slower or a container many times bigger. A container whose /bin/sh never
 * answers holds a clean-up slot (one of SCAN_CONCURRENCY) and the session's end (Relay.end
 * waits for terminate before CLOSE) for this long, and no longer.
 */
export const EXEC_SCAN_TIMEOUT_MS = 10_000;

/**
 * Output of the in-container scan kept before it is abandoned. Its answer is one number on
 * stdout; stderr carries at most sh's own complaints (a missing `tr`), about 100 bytes for each
 * process it looked at: 1 MiB is 10,000 of them. Beyond that it is not the scan talking.
 */
export const EXEC_SCAN_OUTPUT_CAP_BYTES = 1024 * 1024;

/** How long the engine is asked for an abandoned scan's PID: one inspect, normally a few ms. */
const HELPER_INSPECT_TIMEOUT_MS = 2_000;

/** Marks the scan's own processes, so an abandoned one can be found and killed (see killHelper). */
const REAPER_ENV = 'ENTRY_REAPER';

/** Spaces starts 1/rate apart: `turn` resolves at the next free slot. */
class Pacer {
  private nextSlot = 0;
  constructor(private readonly intervalMs: number) {}
  turn(): Promise<void> {
    const at = Math.max(performance.now(), this.nextSlot);
    this.nextSlot = at + this.intervalMs;
    const wait = at - performance.now();
    return wait <= 0 ? Promise.resolve() : new Promise((r) => setTimeout(r, wait));
  }
}

/** A counting semaphore: `run` waits for one of `limit` slots. */
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/** Whether `pid` in our /proc is a container's init: PID 1 of a namespace below ours. */
async function isNamespaceInit(pid: number): Promise<boolean> {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const nspid = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
    return nspid.length >= 2 && nspid[nspid.length - 1] === '1';
  } catch {
    return false;
  }
}

export class ProcessReaper {
  /** Container id → its init's PID in our /proc, for containers seen from here, when that was last checked and last asked for (see INIT_FORGET_MS). */
  private readonly visibleInit = new Map<string, { pid: number; checkedAt: number; usedAt: number }>();
  private lastSweep = performance.now();
  /** Inspections under way, so that sessions of one container ending together ask once. */
  private readonly initLookups = new Map<string, Promise<number>>();
  private readonly scans = new Limiter(SCAN_CONCURRENCY);
  private readonly clientSignals = new Limiter(SIGNAL_CONCURRENCY);

  constructor(
    private readonly docker: Docker,
    private readonly mode: ReapMode,
  ) {}

  private readonly pacer = new Pacer(1000 / CLEANUP_STARTS_PER_SECOND);

  /** Runs `work` in one of the bounded clean-up slots (engine calls made while ending sessions). */
  limited<T>(work: () => Promise<T>): Promise<T> {
    return this.scans.run(work);
  }

  /** Waits for this session's turn to start being ended (see CLEANUP_STARTS_PER_SECOND). */
  cleanupTurn(): Promise<void> {
    return this.pacer.turn();
  }

  /**
   * A PID of the container in our /proc (the anchor of host mode), or 0 when the broker cannot
   * see the engine's processes. The exec's own PID serves while it lives; once it has exited
   * (the shell died, its children did not) the container's init does.
   */
  async hostAnchor(containerId: string, sessionId: string, execHostPid: number): Promise<number> {
    if (this.mode === 'exec') return 0;
    if (execHostPid > 0 && new ProcReader().marked(execHostPid, Buffer.from(`${sessionMark(sessionId)}\0`))) return execHostPid;
    return this.containerInit(containerId);
  }

  /** The container's init in our /proc, or 0 when not visible from here. */
  private async containerInit(containerId: string): Promise<number> {
    const now = performance.now();
    if (now - this.lastSweep >= INIT_FORGET_MS) {
      this.lastSweep = now;
      for (const [id, entry] of this.visibleInit) if (now - entry.usedAt >= INIT_FORGET_MS) this.visibleInit.delete(id);
    }
    const known = this.visibleInit.get(containerId);
    if (known) known.usedAt = now;
    if (known && now - known.checkedAt < INIT_RECHECK_MS) return known.pid;
    if (known && (await isNamespaceInit(known.pid))) {
      known.checkedAt = performance.now();
      return known.pid;
    }
    this.visibleInit.delete(containerId);
    let pending = this.initLookups.get(containerId);
    if (!pending) {
      pending = (async () => {
        let initPid = 0;
        try {
          initPid = (await this.docker.getContainer(containerId).inspect()).State?.Pid ?? 0;
        } catch {
          return 0;
        }
        if (initPid > 0 && (await isNamespaceInit(initPid))) {
          this.visibleInit.set(containerId, { pid: initPid, checkedAt: performance.now(), usedAt: performance.now() });
          return initPid;
        }
        return 0;
      })().finally(() => this.initLookups.delete(containerId));
      this.initLookups.set(containerId, pending);
    }
    return pending;
  }

  /** Whether this broker can see the engine's processes (host mode available). */
  async canUseHost(containerId: string, sessionId: string, execHostPid: number): Promise<boolean> {
    return (await this.hostAnchor(containerId, sessionId, execHostPid)) > 0;
  }

  /** A client's signal to every process of the session: in its own lane (see SIGNAL_CONCURRENCY). */
  signalFromClient(containerId: string, sessionId: string, signal: NodeJS.Signals, execHostPid: number): Promise<number> {
    return this.clientSignals.run(() => this.signalNow(containerId, sessionId, signal, execHostPid));
  }

  /** Sends `signal` to every process of the session, in the clean-up slots. Returns how many were signalled. */
  signal(containerId: string, sessionId: string, signal: NodeJS.Signals, execHostPid: number): Promise<number> {
    return this.scans.run(() => this.signalNow(containerId, sessionId, signal, execHostPid));
  }

  private async signalNow(containerId: string, sessionId: string, signal: NodeJS.Signals, execHostPid: number): Promise<number> {
    const mark = sessionMark(sessionId);
    if (this.mode !== 'exec') {
      // A turn of the event loop between two sessions' walks: when many end at once the relay's
      // I/O runs in between instead of after all of them.
      await new Promise<void>((r) => setImmediate(r));
      const needle = Buffer.from(`${mark}\0`);
      const init = await this.containerInit(containerId);
      let pids: number[] | undefined;
      // With the container's init in view the session's own trees are enough (see treePidsWithMark);
      // without it (a container sharing the host's PID namespace) orphans could be anywhere: scan.
      // The exec's own process hangs off the engine's shim, not init: when its PID is unknown
      // (the session ended before the engine reported it), only the container's whole cgroup
      // is sure to hold it.
      if (init > 0 && execHostPid > 0) pids = await treePidsWithMark(needle, execHostPid, init);
      else if (init > 0) pids = await scanPidsWithMark(needle, init);
      else if (this.mode === 'host' || (execHostPid > 0 && new ProcReader().marked(execHostPid, needle))) pids = await scanPidsWithMark(needle, execHostPid);
      if (pids) {
        let n = 0;
        for (const pid of pids) {
          try {
            process.kill(pid, signal);
            n++;
          } catch {
            // Exited meanwhile.
          }
        }
        return n;
      }
    }
    return this.signalViaExec(containerId, mark, signal);
  }

  /** Whether any process of the session is still alive. */
  async alive(containerId: string, sessionId: string, execHostPid: number): Promise<boolean> {
    // Signal 0 checks existence without touching the processes.
    return (await this.signal(containerId, sessionId, 0 as unknown as NodeJS.Signals, execHostPid)) > 0;
  }

  /**
   * Ends the session's processes: SIGHUP (what a terminal hang-up sends), then SIGKILL for
   * whatever is left after `graceMs`.
   */
  async terminate(containerId: string, sessionId: string, execHostPid: number, graceMs: number): Promise<void> {
    const hupped = await this.signal(containerId, sessionId, 'SIGHUP', execHostPid);
    if (hupped === 0) return;
    const deadline = Date.now() + graceMs;
    let wait = 10;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(wait, Math.max(1, deadline - Date.now()))));
      if (!(await this.alive(containerId, sessionId, execHostPid))) return;
      wait = Math.min(wait * 2, 200);
    }
    await this.signal(containerId, sessionId, 'SIGKILL', execHostPid);
  }

  private async signalViaExec(containerId: string, mark: string, signal: NodeJS.Signals): Promise<number> {
    const sig = typeof signal === 'number' ? String(signal) : signal.replace(/^SIG/, '');
    // The container's own /bin/sh runs this: whoever is root in there may have replaced it with
    // anything. It gets EXEC_SCAN_TIMEOUT_MS and EXEC_SCAN_OUTPUT_CAP_BYTES, no more.
    const tag = `${REAPER_ENV}=${randomBytes(8).toString('hex')}`;
    let exec: Docker.Exec | undefined;
    let stream: Duplex | undefined;
    let abandoned = false;
    // Multiplexed output: the count is on stdout alone, anything on stderr only explains a missing count.
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const demux = new DockerDemuxer((which, data) => (which === 'stderr' ? stderr : stdout).push(Buffer.from(data)));
    let received = 0;
    let outcome: 'done' | 'timeout' | 'overflow';
    try {
      outcome = await new Promise<'done' | 'timeout' | 'overflow'>((resolve, reject) => {
        const timer = setTimeout(() => resolve('timeout'), EXEC_SCAN_TIMEOUT_MS);
        const settle = (o: 'done' | 'timeout' | 'overflow') => {
          clearTimeout(timer);
          resolve(o);
        };
        void (async () => {
          exec = await this.docker.getContainer(containerId).exec({
            Cmd: ['/bin/sh', '-c', SCAN_SCRIPT, 'entry-reaper', mark, sig],
            Env: [tag],
            AttachStdout: true,
            AttachStderr: true,
            User: '0',
          });
          // Given up on while the engine was still creating or starting it.
          if (abandoned) return;
          const s = (await exec.start({ hijack: true, stdin: false })) as Duplex;
          if (abandoned) {
            s.destroy();
            return void this.killHelper(exec, tag);
          }
          stream = s;
          s.on('data', (c: Buffer) => {
            received += c.length;
            if (received > EXEC_SCAN_OUTPUT_CAP_BYTES) settle('overflow');
            else demux.push(c);
          });
          s.on('end', () => settle('done'));
          s.on('close', () => settle('done'));
          s.on('error', () => settle('done'));
        })().catch((err: unknown) => {
          clearTimeout(timer);
          reject(err);
        });
      });
    } catch (err) {
      if (err instanceof EntryError) throw err;
      throw dockerFailure(err, 'ending session processes');
    }
    if (outcome !== 'done') {
      abandoned = true;
      stream?.destroy();
      stdout.length = 0;
      stderr.length = 0;
      // In the background: the slot and the session's end wait for nothing more.
      if (stream && exec) void this.killHelper(exec, tag);
      const what = outcome === 'timeout' ? `gave no answer within ${EXEC_SCAN_TIMEOUT_MS} ms` : `wrote more than ${EXEC_SCAN_OUTPUT_CAP_BYTES} bytes`;
      throw new EntryError('ENTRY_EXEC_FAILED', `cannot end the session's processes from inside the container: its /bin/sh ${what}; scan abandoned`);
    }
    const text = Buffer.concat(stdout).toString().trim();
    const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (Number.isNaN(n)) {
      // Typically the image has no sh (or no tr, grep, kill): the processes cannot be found from inside.
      const why = [text, Buffer.concat(stderr).toString().trim()].filter(Boolean).join(' / ').slice(0, 300) || 'no answer';
      throw new EntryError('ENTRY_EXEC_FAILED', `cannot end the session's processes from inside the container: ${why}`);
    }
    return n;
  }

  /**
   * Kills an abandoned scan's process tree when the engine's processes are visible from here
   * (only those carrying the scan's own `tag`, so never a stranger). Closing its stream does
   * not end it. False when they cannot be reached (the broker in a PID namespace of its own).
   */
  private async killHelper(exec: Docker.Exec, tag: string): Promise<boolean> {
    try {
      const info = await withTimeout(exec.inspect(), HELPER_INSPECT_TIMEOUT_MS, 'inspecting an abandoned scan');
      const pid = info.Pid ?? 0;
      if (pid <= 0) return false;
      // No init to search: only the helper and its descendants.
      const pids = await treePidsWithMark(Buffer.from(`${tag}\0`), pid, 0);
      let n = 0;
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
          n++;
        } catch {
          // Exited meanwhile, or not ours to signal.
        }
      }
      return n > 0;
    } catch {
      return false;
    }
  }
}

import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { cleanUpOrRetry } from '../backend/cleanup-retry.js';
import { Limiter, nextTurn, Pacer } from '../backend/pacing.js';
import { ScanBatcher } from '../backend/scan-batcher.js';
import { sessionMark } from '../backend/session-mark.js';
import { EntryError, isEntryError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { answerInTime, dockerFailure } from './engine.js';
import { EXEC_SCAN_OVERDUE_MS, MAX_MARKS_PER_EXEC_SCAN, signalViaExec } from './exec-scan.js';
import { environmentReadable, isNamespaceInit, ProcReader, scanPidsWithMark, treePidsWithMark } from './proc-walk.js';

/**
 * Docker has no API to kill an exec, and closing its stream does not end it. Every process a
 * session starts carries `ENTRY_SESSION=<id>` in its environment (children inherit it), so the
 * reaper finds them by that mark and signals them:
 *  - host mode: whenever the broker sees the engine's processes (it shares the engine's PID
 *    namespace or an ancestor of it: the exec's host PID, or the container's init, is in our
 *    /proc) and may read their environment and signal them (root, or CAP_SYS_PTRACE and
 *    CAP_KILL), it scans the container's processes itself: works in any image;
 *  - exec mode: otherwise it runs a short `sh` script in the container that does the same
 *    scan there: needs sh, tr, grep and kill in the image.
 */
export type ReapMode = 'auto' | 'host' | 'exec';

/**
 * Scans inside containers (exec mode) and clean-ups' engine calls running at once. When every
 * client vanishes together (a load balancer restart) each session's clean-up would otherwise
 * start together too: a few in flight keep the libuv pool (4 threads, shared with the broker's
 * other file work) and the engine's API from being flooded, and let the relay's own I/O in
 * between. 8 = twice the pool's threads, so it never idles while one scan awaits the engine.
 * Walks in our /proc have a lane of their own (WALK_CONCURRENCY).
 */
const SCAN_CONCURRENCY = 8;

/**
 * Sessions whose processes are walked in our /proc at once, for their clean-up. A walk is
 * synchronous reads on the event loop's thread, so walks side by side are no faster than one
 * after the other; 2 rather than 1 so that a walk waiting for a process caught inside an
 * execve (up to 63 ms, see SETTLE_WAITS_MS) does not hold up every other session's. In a
 * 1,000-session drop, 1 or 2 walks at a time gave the typists an echo p50 of 44–77 ms against
 * 84–134 ms with 8, for a clean-up 0.4 s longer in the median (bench/README.md).
 */
const WALK_CONCURRENCY = 2;

/**
 * Client signals (SIGNAL) delivered at once, across sessions. They have a lane of their own so
 * that no number of them can delay a session's clean-up in the clean-up lanes' queues; each session
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
 * Waits between SIGKILL passes, each pass on a walk of its own: a process that forks while it is
 * being killed (a loop that ignores SIGHUP) leaves children the pass before did not see, and a
 * killed process is still there until the kernel has run it to its end (milliseconds on an idle
 * machine, a wait for a core on one with tens of runnable tasks per core). The first pass kills
 * the forking parents, the next what they started meanwhile; a session whose processes end at
 * once takes two. Processes still found after the last (1,270 ms in all) leave the session in
 * the ledger, for the next sweep to end, a minute later.
 */
const KILL_PASS_WAITS_MS = [10, 20, 40, 80, 160, 320, 640];

export class ProcessReaper {
  /** Container id → its init's PID in our /proc, for containers seen from here, when that was last checked and last asked for (see INIT_FORGET_MS). */
  private readonly visibleInit = new Map<string, { pid: number; checkedAt: number; usedAt: number }>();
  private lastSweep = performance.now();
  /** Inspections under way, so that sessions of one container ending together ask once. */
  private readonly initLookups = new Map<string, Promise<number>>();
  private readonly scans = new Limiter(SCAN_CONCURRENCY);
  private readonly walks = new Limiter(WALK_CONCURRENCY);
  private readonly clientSignals = new Limiter(SIGNAL_CONCURRENCY);
  /**
   * Scans inside containers, shared by the sessions of a container ending together (see
   * ScanBatcher): clean-ups' in the scan lane, clients' signals in their own.
   */
  private readonly execScans = {
    cleanup: this.scanBatcher(this.scans),
    client: this.scanBatcher(this.clientSignals),
  };

  constructor(
    private readonly docker: Docker,
    private readonly mode: ReapMode,
    /** Where a clean-up finished in the background (see retryCleanup) says how it ended. */
    private readonly log: Logger = createLogger('silent'),
  ) {}

  private readonly pacer = new Pacer(1000 / CLEANUP_STARTS_PER_SECOND);

  private scanBatcher(limiter: Limiter): ScanBatcher<string> {
    return new ScanBatcher<string>({ limiter, maxMarks: MAX_MARKS_PER_EXEC_SCAN, overdueMs: EXEC_SCAN_OVERDUE_MS, keyOf: (containerId) => containerId, run: (containerId, signal, marks) => signalViaExec(this.docker, containerId, signal, marks) });
  }

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
    if (known && isNamespaceInit(known.pid)) {
      known.checkedAt = performance.now();
      return known.pid;
    }
    this.visibleInit.delete(containerId);
    let pending = this.initLookups.get(containerId);
    if (!pending) {
      pending = (async () => {
        let initPid = 0;
        try {
          initPid = (await this.docker.getContainer(containerId).inspect(answerInTime())).State?.Pid ?? 0;
        } catch {
          return 0;
        }
        // Seen, and its processes' marks readable from here: else they are ended from inside.
        if (initPid > 0 && isNamespaceInit(initPid) && environmentReadable(initPid)) {
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
  signalFromClient(containerId: string, sessionId: string, signal: NodeJS.Signals, execHostPid: number, execStart = ''): Promise<number> {
    return this.signalIn({ walk: this.clientSignals, exec: this.execScans.client }, containerId, sessionId, signal, execHostPid, execStart);
  }

  /**
   * Sends `signal` to every process of the session, for its clean-up: a walk in our /proc in the
   * walk lane (WALK_CONCURRENCY), a scan inside the container in the scan lane (SCAN_CONCURRENCY).
   * Returns how many were found (see signalPids). `execStart`: the start time of the exec's process, read while
   * it ran (processStartTicks), which lets the walk count it whatever its environment says.
   */
  signal(containerId: string, sessionId: string, signal: NodeJS.Signals, execHostPid: number, execStart = ''): Promise<number> {
    return this.signalIn({ walk: this.walks, exec: this.execScans.cleanup }, containerId, sessionId, signal, execHostPid, execStart);
  }

  private async signalIn(lanes: { walk: Limiter; exec: ScanBatcher<string> }, containerId: string, sessionId: string, signal: NodeJS.Signals, execHostPid: number, execStart: string): Promise<number> {
    const mark = sessionMark(sessionId);
    if (this.mode !== 'exec') {
      const needle = Buffer.from(`${mark}\0`);
      // Outside the lane: an inspection waits for the engine, not for /proc (and there is at
      // most one per container).
      const init = await this.containerInit(containerId);
      const pids = await lanes.walk.run(() => this.walk(needle, execHostPid, init, execStart));
      const sent = pids && signalPids(pids, signal);
      if (sent !== undefined) return sent;
    }
    // The scan takes a signal's name without SIG, or its number (0: only count).
    return lanes.exec.signal(containerId, mark, typeof signal === 'number' ? String(signal) : signal.replace(/^SIG/, ''));
  }

  /** The session's processes found in our /proc, or undefined when they cannot be seen from here. */
  private async walk(needle: Buffer, execHostPid: number, init: number, execStart: string): Promise<number[] | undefined> {
    // A turn of the event loop between two sessions' walks: when many end at once the relay's
    // I/O runs in between instead of after all of them.
    await nextTurn();
    // With the container's init in view the session's own trees are enough (see treePidsWithMark);
    // without it (a container sharing the host's PID namespace) orphans could be anywhere: scan.
    // The exec's own process hangs off the engine's shim, not init: when its PID is unknown
    // (the session ended before the engine reported it), only the container's whole cgroup
    // is sure to hold it.
    if (init > 0 && execHostPid > 0) return treePidsWithMark(needle, execHostPid, init, execStart);
    if (init > 0) return scanPidsWithMark(needle, init);
    if (this.mode === 'host' || (execHostPid > 0 && new ProcReader().marked(execHostPid, needle))) return scanPidsWithMark(needle, execHostPid);
    return undefined;
  }

  /** Whether any process of the session is still alive. */
  async alive(containerId: string, sessionId: string, execHostPid: number, execStart = ''): Promise<boolean> {
    // Signal 0 checks existence without touching the processes.
    return (await this.signal(containerId, sessionId, 0 as unknown as NodeJS.Signals, execHostPid, execStart)) > 0;
  }

  /**
   * Ends the session's processes: SIGHUP (what a terminal hang-up sends), then SIGKILL for
   * whatever is left after `graceMs`. When the engine cannot be reached (a remote engine's link
   * down), this fails at once, not holding up the session's end, and the clean-up goes on in
   * the background until the engine answers again.
   */
  terminate(containerId: string, sessionId: string, execHostPid: number, graceMs: number, execStart = ''): Promise<void> {
    return cleanUpOrRetry(() => this.terminateOnce(containerId, sessionId, execHostPid, graceMs, execStart), engineUnreachable, this.log, { container: containerId.slice(0, 12), session: sessionId });
  }

  private async terminateOnce(containerId: string, sessionId: string, execHostPid: number, graceMs: number, execStart: string): Promise<void> {
    const hupped = await this.signal(containerId, sessionId, 'SIGHUP', execHostPid, execStart);
    if (hupped === 0) return;
    const deadline = Date.now() + graceMs;
    let wait = 10;
    while (Date.now() < deadline) {
      await sleep(Math.min(wait, Math.max(1, deadline - Date.now())));
      if (!(await this.alive(containerId, sessionId, execHostPid, execStart))) return;
      wait = Math.min(wait * 2, 200);
    }
    let found = await this.signal(containerId, sessionId, 'SIGKILL', execHostPid, execStart);
    for (const wait of KILL_PASS_WAITS_MS) {
      if (found === 0) return;
      await sleep(wait);
      found = await this.signal(containerId, sessionId, 'SIGKILL', execHostPid, execStart);
    }
    if (found > 0) throw new Error(`the session's processes outlived SIGKILL: ${found} still found after ${KILL_PASS_WAITS_MS.length + 1} rounds (a process forking faster than it is killed, or one stuck in the kernel)`);
  }
}

/** A failure of the engine's link, not of the clean-up itself, as the error to tell. */
function engineUnreachable(err: unknown): EntryError | undefined {
  const failure = isEntryError(err) ? err : dockerFailure(err, "ending the session's processes");
  return failure.code === 'ENTRY_DOCKER_UNAVAILABLE' ? failure : undefined;
}

/**
 * Sends `signal` to each PID found by a walk; returns how many the walk found, or undefined when
 * this process may not signal them (another user's, without CAP_KILL): they are signalled from
 * inside the container instead. Found, not reached: one that ended between the walk and its
 * signal may have forked first, and that child, handed to init after the walk read init's
 * children, is found only by another pass, which a count of 0 would not make.
 */
function signalPids(pids: number[], signal: NodeJS.Signals): number | undefined {
  // Which are still there, asked of all before any is signalled: a fallback then never delivers
  // a signal twice to those already reached. Signal 0 (is any alive?) is answered by this alone.
  const present: number[] = [];
  for (const pid of pids) {
    try {
      process.kill(pid, 0);
      present.push(pid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPERM') return undefined;
      // Exited meanwhile.
    }
  }
  if (!signal) return pids.length;
  for (const pid of present) {
    try {
      process.kill(pid, signal);
    } catch {
      // Exited meanwhile.
    }
  }
  return pids.length;
}

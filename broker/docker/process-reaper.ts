import { readdir, readFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import { SCAN_SCRIPT, SESSION_ENV } from '../backend/session-mark.js';
import { EntryError } from '../errors.js';
import { dockerFailure } from './engine.js';

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

/** PIDs carrying the session mark, among the container's processes (or all of /proc). */
async function hostPidsWithMark(mark: string, anchorPid: number): Promise<number[]> {
  const pids = (anchorPid > 0 ? await cgroupPids(anchorPid) : undefined) ?? (await readdir('/proc')).filter((n) => /^\d+$/.test(n)).map(Number);
  const needle = Buffer.from(`\0${mark}\0`);
  const found = await Promise.all(
    pids.map(async (pid) => {
      try {
        const env = await readFile(`/proc/${pid}/environ`);
        // The mark may be the first entry: compare with a NUL in front of the environment.
        return Buffer.concat([Buffer.from([0]), env, Buffer.from([0])]).includes(needle) ? pid : 0;
      } catch {
        return 0;
      }
    }),
  );
  return found.filter((p) => p > 0);
}

/** Whether `pid` in our /proc is a container's init: PID 1 of a namespace below ours. */
async function isNamespaceInit(pid: number): Promise<boolean> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const nspid = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
    return nspid.length >= 2 && nspid[nspid.length - 1] === '1';
  } catch {
    return false;
  }
}

export class ProcessReaper {
  /** Container id → its init's PID in our /proc, for containers seen from here. */
  private readonly visibleInit = new Map<string, number>();

  constructor(
    private readonly docker: Docker,
    private readonly mode: ReapMode,
  ) {}

  /**
   * A PID of the container in our /proc (the anchor of host mode), or 0 when the broker cannot
   * see the engine's processes. The exec's own PID serves while it lives; once it has exited
   * (the shell died, its children did not) the container's init does.
   */
  async hostAnchor(containerId: string, sessionId: string, execHostPid: number): Promise<number> {
    if (this.mode === 'exec') return 0;
    if (execHostPid > 0) {
      try {
        const env = await readFile(`/proc/${execHostPid}/environ`);
        if (env.includes(Buffer.from(`${SESSION_ENV}=${sessionId}`))) return execHostPid;
      } catch {
        // Exited, or not in our PID namespace.
      }
    }
    const known = this.visibleInit.get(containerId);
    if (known && (await isNamespaceInit(known))) return known;
    this.visibleInit.delete(containerId);
    let initPid = 0;
    try {
      initPid = (await this.docker.getContainer(containerId).inspect()).State?.Pid ?? 0;
    } catch {
      return 0;
    }
    if (initPid > 0 && (await isNamespaceInit(initPid))) {
      this.visibleInit.set(containerId, initPid);
      return initPid;
    }
    return 0;
  }

  /** Whether this broker can see the engine's processes (host mode available). */
  async canUseHost(containerId: string, sessionId: string, execHostPid: number): Promise<boolean> {
    return (await this.hostAnchor(containerId, sessionId, execHostPid)) > 0;
  }

  /** Sends `signal` to every process of the session. Returns how many were signalled. */
  async signal(containerId: string, sessionId: string, signal: NodeJS.Signals, execHostPid: number): Promise<number> {
    const mark = `${SESSION_ENV}=${sessionId}`;
    const anchor = this.mode === 'exec' ? 0 : await this.hostAnchor(containerId, sessionId, execHostPid);
    if (this.mode === 'host' || anchor > 0) {
      let n = 0;
      for (const pid of await hostPidsWithMark(mark, anchor || execHostPid)) {
        try {
          process.kill(pid, signal);
          n++;
        } catch {
          // Exited meanwhile.
        }
      }
      return n;
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
    try {
      const exec = await this.docker.getContainer(containerId).exec({
        Cmd: ['/bin/sh', '-c', SCAN_SCRIPT, 'entry-reaper', mark, sig],
        AttachStdout: true,
        AttachStderr: true,
        User: '0',
      });
      const stream = await exec.start({ hijack: true, stdin: false });
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      await new Promise<void>((resolve) => {
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', () => resolve());
      });
      // Multiplexed output (8-byte headers, byte 0 the stream): the count is on stdout alone,
      // anything on stderr only explains a missing count.
      const raw = Buffer.concat(chunks);
      let out = '';
      let err = '';
      for (let pos = 0; pos + 8 <= raw.length; ) {
        const size = raw.readUInt32BE(pos + 4);
        const payload = raw.subarray(pos + 8, pos + 8 + size).toString();
        if (raw[pos] === 2) err += payload;
        else out += payload;
        pos += 8 + size;
      }
      const text = out.trim();
      const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
      if (Number.isNaN(n)) {
        // Typically the image has no sh (or no tr, grep, kill): the processes cannot be found from inside.
        const why = [text, err.trim()].filter(Boolean).join(' / ').slice(0, 300) || 'no answer';
        throw new EntryError('ENTRY_EXEC_FAILED', `cannot end the session's processes from inside the container: ${why}`);
      }
      return n;
    } catch (err) {
      if (err instanceof EntryError) throw err;
      throw dockerFailure(err, 'ending session processes');
    }
  }
}

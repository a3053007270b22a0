import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { scanOverran } from '../backend/scan-batcher.js';
import { SCAN_SCRIPT, shellCannotRun } from '../backend/session-mark.js';
import { EntryError } from '../errors.js';
import { DockerDemuxer } from './demux.js';
import { dockerFailure } from './engine.js';
import { treePidsWithMark } from './proc-walk.js';

/*
 * The reaper's exec mode: when the broker cannot see the engine's processes, a short `sh` script
 * run in the container finds the session's processes by their mark and signals them there.
 */

/**
 * How long the in-container scan (exec mode) may take before it is abandoned. It reads every
 * process's environment with one `grep` and forks a `tr` and a `grep` only for the candidates
 * (see SCAN_SCRIPT): 8 scans at once, each a `docker exec`, in a container of 37 processes
 * starting 60 a second took 1.6 s on a loaded 2-core host, so 10 s leaves room for a host
 * several times slower or a container many times bigger. A container whose /bin/sh never
 * answers holds a clean-up slot (one of the reaper's SCAN_CONCURRENCY) and the session's end (Relay.end
 * waits for terminate before CLOSE) for this long a scan: two slots at most for its container
 * (a batch starts beside a scan past EXEC_SCAN_OVERDUE_MS), and one batch's halves after it
 * (see ScanBatcher) only where no scan of as few marks overran there.
 */
export const EXEC_SCAN_TIMEOUT_MS = 10_000;

/**
 * Output of the in-container scan kept before it is abandoned. Its answer is a number per mark
 * on stdout (a few hundred bytes); stderr carries at most sh's own complaints (a missing `tr`), about 100 bytes for each
 * process it looked at: 1 MiB is 10,000 of them. Beyond that it is not the scan talking.
 */
export const EXEC_SCAN_OUTPUT_CAP_BYTES = 1024 * 1024;

/** How long the engine is asked for an abandoned scan's PID: one inspect, normally a few ms. */
const HELPER_INSPECT_TIMEOUT_MS = 2_000;

/** Marks the scan's own processes, so an abandoned one can be found and killed (see killHelper). */
const REAPER_ENV = 'ENTRY_REAPER';

/**
 * Marks one scan takes at most (see ScanBatcher). Not the exec's transport: Docker takes the argv
 * in the create's JSON body, and 48 marks of the longest session id are 4 KiB beside the
 * script's 1 KiB, far from any limit of the engine or of execve (2 MiB with an 8 MiB stack). It is
 * the scan's own time: each mark's processes are candidates, and each candidate's lines are
 * compared with every mark, so a scan grows with the square of its marks. With two processes a
 * mark, BusyBox's sh on a 2-core host at load 8 took 1.1–2.7 s for 48 marks, 2.4–6.7 s for 96
 * and 6–13 s for 192, past EXEC_SCAN_TIMEOUT_MS (whose expiry has the batch tried again in halves, once):
 * 48 keeps a full scan near a quarter of it. Sessions of many processes each take it past
 * anyway: in a container of 48 marks of 20 processes, 1 mark took 0.36 s, 8 1.6 s, 12 to 32 8–10
 * s, and 48 overran.
 */
export const MAX_MARKS_PER_EXEC_SCAN = 48;

/**
 * How long a scan runs before the next batch of its container and signal starts beside it (see
 * ScanBatcher): twice the slowest full scan measured when all is well (2.7 s, above), half of
 * EXEC_SCAN_TIMEOUT_MS. A scan this long is one of many processes a mark (20 a mark took 8–10 s
 * for 12 to 32 marks, and 48 overran) or of a container short of CPU (`--cpus 0.1`: 4 s for one
 * mark of 40 processes), where a batch behind it of a few light sessions takes under a second.
 */
export const EXEC_SCAN_OVERDUE_MS = 5_000;

/**
 * Sends `signal` (a name without SIG, or a number) to every process of the container carrying one
 * of `marks`, from inside it. Returns how many processes carrying each mark were signalled, in
 * the marks' order.
 */
export async function signalViaExec(docker: Docker, containerId: string, signal: string, marks: readonly string[]): Promise<number[]> {
  // The container's own /bin/sh runs this: whoever is root in there may have replaced it with
  // anything. It gets EXEC_SCAN_TIMEOUT_MS and EXEC_SCAN_OUTPUT_CAP_BYTES, no more.
  const tag = `${REAPER_ENV}=${randomBytes(8).toString('hex')}`;
  let exec: Docker.Exec | undefined;
  let stream: Duplex | undefined;
  let abandoned = false;
  // Multiplexed output: the counts are on stdout alone, anything on stderr only explains missing ones.
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const demux = new DockerDemuxer((which, data) => (which === 'stderr' ? stderr : stdout).push(Buffer.from(data)));
  let received = 0;
  let outcome: 'done' | 'timeout' | 'overflow';
  // Cancels the create or start still waiting when the time is up: an engine that never answers
  // would otherwise keep each scan's request open for good.
  const calls = new AbortController();
  try {
    outcome = await new Promise<'done' | 'timeout' | 'overflow'>((resolve, reject) => {
      const timer = setTimeout(() => resolve('timeout'), EXEC_SCAN_TIMEOUT_MS);
      const settle = (o: 'done' | 'timeout' | 'overflow') => {
        clearTimeout(timer);
        resolve(o);
      };
      void (async () => {
        exec = await docker.getContainer(containerId).exec({
          Cmd: ['/bin/sh', '-c', SCAN_SCRIPT, 'entry-reaper', signal, ...marks],
          Env: [tag],
          AttachStdout: true,
          AttachStderr: true,
          User: '0',
          abortSignal: calls.signal,
        });
        // Given up on while the engine was still creating or starting it.
        if (abandoned) return;
        const s = (await exec.start({ hijack: true, stdin: false, abortSignal: calls.signal })) as Duplex;
        if (abandoned) {
          s.destroy();
          return void killHelper(exec, tag);
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
    // The engine itself did not answer: the link's failure, which the clean-up tries again.
    if (!stream) {
      calls.abort();
      throw new EntryError('ENTRY_DOCKER_UNAVAILABLE', `ending the session's processes: no answer within ${EXEC_SCAN_TIMEOUT_MS} ms`);
    }
    stream.destroy();
    stdout.length = 0;
    stderr.length = 0;
    // In the background: the slot and the session's end wait for nothing more.
    if (exec) void killHelper(exec, tag);
    const what = outcome === 'timeout' ? `gave no answer within ${EXEC_SCAN_TIMEOUT_MS} ms` : `wrote more than ${EXEC_SCAN_OUTPUT_CAP_BYTES} bytes`;
    const failure = new EntryError('ENTRY_EXEC_FAILED', `cannot end the session's processes from inside the container: its /bin/sh ${what}; scan abandoned`);
    // A scan that ran out of time may finish for fewer marks; one that wrote too much would not.
    throw outcome === 'timeout' ? scanOverran(failure) : failure;
  }
  const text = Buffer.concat(stdout).toString().trim();
  const counts = /^\d+(?: \d+)*$/.test(text) ? text.split(' ').map(Number) : [];
  if (counts.length !== marks.length) {
    // Typically the image has no sh (or no tr, grep, kill): the processes cannot be found from inside.
    const why = [text, Buffer.concat(stderr).toString().trim()].filter(Boolean).join(' / ').slice(0, 300) || 'no answer';
    const code = exec ? await exitCodeOf(exec) : undefined;
    if (shellCannotRun(code, why)) throw new EntryError('ENTRY_CANNOT_REAP', `its /bin/sh cannot run the scan${code === undefined ? '' : ` (exit ${code})`}: ${why}`);
    throw new EntryError('ENTRY_EXEC_FAILED', `cannot end the session's processes from inside the container: ${why}`);
  }
  return counts;
}

/** A finished scan's exit code, or undefined when the engine does not say. */
async function exitCodeOf(exec: Docker.Exec): Promise<number | undefined> {
  try {
    const info = await exec.inspect({ abortSignal: AbortSignal.timeout(HELPER_INSPECT_TIMEOUT_MS) });
    return typeof info.ExitCode === 'number' && !info.Running ? info.ExitCode : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Kills an abandoned scan's process tree when the engine's processes are visible from here
 * (only those carrying the scan's own `tag`, so never a stranger). Closing its stream does
 * not end it. False when they cannot be reached (the broker in a PID namespace of its own).
 */
async function killHelper(exec: Docker.Exec, tag: string): Promise<boolean> {
  try {
    const info = await exec.inspect({ abortSignal: AbortSignal.timeout(HELPER_INSPECT_TIMEOUT_MS) });
    const pid = info.Pid ?? 0;
    if (pid <= 0) return false;
    // No init to search: only the helper and its descendants.
    const pids = (await treePidsWithMark(Buffer.from(`${tag}\0`), pid, 0)) ?? [];
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

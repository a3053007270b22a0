import { setTimeout as sleep } from 'node:timers/promises';
import { cleanUpOrRetry } from '../backend/cleanup-retry.js';
import { Limiter } from '../backend/pacing.js';
import { SCAN_SCRIPT, sessionMark, shellCannotRun } from '../backend/session-mark.js';
import { EntryError, isEntryError } from '../errors.js';
import type { Logger } from '../log.js';
import { execCollect, type ExecTarget } from './exec-socket.js';
import type { KubeClient } from './kube-client.js';
import { ScanBatches } from './scan-batches.js';

/**
 * Clean-up execs open at once, per cluster. When every client vanishes together (a load balancer
 * restart) the sessions of one container share their scans (see ScanBatches), but sessions spread
 * over many pods still need one each, and the apiserver and kubelets are shared with the
 * sessions still open: 8 in flight, as the Docker reaper's scans.
 */
const SCAN_CONCURRENCY = 8;

/**
 * A session whose command may not have started yet (an exec whose answer was lost, one ended
 * before it printed anything) is looked for again this much later when the first scan found
 * nothing: nothing tells when the kubelet starts the command, milliseconds after the upgrade
 * here but later on a loaded node.
 */
const LATE_START_RECHECK_MS = 2_000;

/**
 * Waits between SIGKILL passes, each a scan of its own: a process that forks while it is being
 * killed leaves children the pass before did not see. A pass that finds nothing confirms the
 * session's processes gone; one that still finds some after the last (about 0.4 s of waits plus
 * four scans) fails the clean-up, and the session stays in the ledger for the next sweep. A
 * scan is an exec (tens to hundreds of ms), so fewer and longer waits than the Docker reaper's
 * walks.
 */
const KILL_PASS_WAITS_MS = [20, 80, 320];

/**
 * Closing a pods/exec stream does not end the process in the pod (kubernetes#89031), and
 * Kubernetes has no API to signal one. Every process a session starts carries
 * `ENTRY_SESSION=<id>` in its environment (the exec wrapper exports it; children inherit it),
 * so a second, short exec in the same container finds the marked processes in /proc and
 * signals them: the same scan as Docker's exec mode, needing sh, tr, grep and kill in the image.
 */
export class PodReaper {
  private readonly batches: ScanBatches;

  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
  ) {
    this.batches = new ScanBatches(new Limiter(SCAN_CONCURRENCY), (t, signal, marks) => this.scan(t, signal, marks));
  }

  /** Sends `signal` (a name without SIG, or 0) to every process marked `mark`; how many got it. */
  signalMarked(t: ExecTarget, mark: string, signal: string): Promise<number> {
    // A mark or signal the scan cannot take is refused there, before any exec.
    return this.batches.signal(t, mark, signal);
  }

  /** One exec of the scan for `marks` (see ScanBatches); its counts in their order. */
  private async scan(t: ExecTarget, signal: string, marks: readonly string[]): Promise<number[]> {
    this.log.debug('reaper scan', { cluster: this.client.cluster, pod: `${t.namespace}/${t.pod}`, container: t.container, signal, marks: marks.length });
    const r = await execCollect(this.client, t, ['/bin/sh', '-c', SCAN_SCRIPT, 'entry-reaper', signal, ...marks]);
    const text = r.stdout.trim();
    const counts = /^\d+(?: \d+)*$/.test(text) ? text.split(' ').map(Number) : [];
    if (counts.length === marks.length) return counts;
    // Typically the image has no sh (or no tr, grep, kill): nothing can be found from inside.
    const why = [text, r.stderr.trim(), r.status && 'failure' in r.status ? r.status.failure : ''].filter(Boolean).join(' / ').slice(0, 300) || 'no answer';
    const code = r.status && 'exitCode' in r.status ? r.status.exitCode : undefined;
    if (shellCannotRun(code, why)) throw new EntryError('ENTRY_CANNOT_REAP', `the scan's /bin/sh cannot run in ${t.namespace}/${t.pod}${code === undefined ? '' : ` (exit ${code})`}: ${why}`);
    throw new EntryError('ENTRY_EXEC_FAILED', `cannot end the session's processes in ${t.namespace}/${t.pod}: ${why}`);
  }

  signal(t: ExecTarget, sessionId: string, signal: string): Promise<number> {
    return this.signalMarked(t, sessionMark(sessionId), signal);
  }

  /**
   * SIGHUP (a terminal hang-up), then SIGKILL for whatever is left after `graceMs`. When the
   * cluster cannot be reached, this fails at once (the session's end is not held up by an
   * outage) and the clean-up goes on in the background until the cluster answers again.
   */
  terminate(t: ExecTarget, sessionId: string, graceMs: number, mayStartLate = false): Promise<void> {
    return cleanUpOrRetry(() => this.terminateOnce(t, sessionId, graceMs, mayStartLate), unreachable, this.log, { cluster: this.client.cluster, session: sessionId, pod: `${t.namespace}/${t.pod}` });
  }

  private async terminateOnce(t: ExecTarget, sessionId: string, graceMs: number, mayStartLate: boolean): Promise<void> {
    let hupped = await this.signal(t, sessionId, 'HUP');
    if (hupped === 0 && mayStartLate) {
      await sleep(LATE_START_RECHECK_MS);
      hupped = await this.signal(t, sessionId, 'HUP');
    }
    if (hupped === 0) return;
    const deadline = Date.now() + graceMs;
    let wait = 20;
    while (Date.now() < deadline) {
      await sleep(Math.min(wait, Math.max(1, deadline - Date.now())));
      if ((await this.signal(t, sessionId, '0')) === 0) return;
      wait = Math.min(wait * 2, 250);
    }
    let found = await this.signal(t, sessionId, 'KILL');
    for (const wait of KILL_PASS_WAITS_MS) {
      if (found === 0) return;
      await sleep(wait);
      found = await this.signal(t, sessionId, 'KILL');
    }
    if (found > 0) throw new Error(`the session's processes outlived SIGKILL: ${found} still found in ${t.namespace}/${t.pod} after ${KILL_PASS_WAITS_MS.length + 1} rounds (a process forking faster than it is killed, or one stuck in the kernel)`);
  }
}

function unreachable(err: unknown): EntryError | undefined {
  return isEntryError(err) && err.code === 'ENTRY_CLUSTER_UNAVAILABLE' ? err : undefined;
}

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backends } from '../../broker/backend/backends.js';
import type { EntryError } from '../../broker/errors.js';
import { createKubernetesBackend, type KubernetesBackend } from '../../broker/kubernetes/kubernetes-backend.js';
import { createLogger } from '../../broker/log.js';
import type { ProcessSide } from '../../broker/session/types.js';
import { execSpecs } from '../helpers/exec-specs.js';
import { MAX_MARKS_PER_SCAN } from '../../broker/kubernetes/scan-batches.js';
import { type KubeCluster, kubeClusterPossible, kubeStartTimeoutMs, startKubeCluster } from '../helpers/kube-cluster.js';

/*
 * Many sessions of one pod losing their clients at once (a load balancer restart): every process
 * of every session must end, with the reaper's scans shared between them rather than one exec
 * per session per step. The scans are counted as the apiserver calls the backend reports for its
 * metrics (`exec`), once every session is open.
 */

const SESSIONS = 24;
const log = createLogger(process.env.ENTRY_TEST_LOG === '1' ? 'debug' : 'silent');

/** Starts a process side as the relay does; resolves once its stdout has shown `text`. */
function started(p: ProcessSide, text: string, ms = 30_000): Promise<void> {
  let out = '';
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`never saw ${JSON.stringify(text)}; got ${JSON.stringify(out.slice(-200))}`)), ms);
    p.start({
      output: (_s, d) => {
        out += Buffer.from(d).toString('utf8');
        if (out.includes(text)) {
          clearTimeout(timer);
          resolve();
        }
      },
      drain: () => undefined,
      end: () => undefined,
    });
  });
}

describe.skipIf(!kubeClusterPossible())('many Kubernetes sessions of one pod dropped at once', () => {
  let k: KubeCluster;
  let backend: KubernetesBackend;
  let backends: Backends;
  const ns = `entry-md-${randomBytes(3).toString('hex')}`;
  const spec = execSpecs('md', 2_000);
  const prefix = `ENTRY_SESSION=md-${process.pid}-`;
  /** Exec calls the backend made (sessions' and scans'). */
  let execs = 0;

  /** PIDs in the pod whose environment has a mark of this file's sessions, as whole entries. */
  const markedPids = async (pod: string): Promise<string[]> => {
    const script = `for d in /proc/[0-9]*; do if tr '\\0' '\\n' < $d/environ 2>/dev/null | grep -q "^$1"; then echo "\${d#/proc/}"; fi; done`;
    const out = await k.kubectl(['exec', '-n', ns, pod, '-c', 'main', '--', 'sh', '-c', script, 'list', prefix]);
    return out.split('\n').filter((l) => l.trim());
  };

  beforeAll(async () => {
    k = await startKubeCluster();
    await k.createNamespace(ns);
    const pods: Array<[string, string]> = [
      ['crowd', 'entry-demo:latest'],
      ['nosh', 'entry-demo:nosh'],
    ];
    for (const [name, image] of pods) {
      const r = await k.api('POST', `/api/v1/namespaces/${ns}/pods`, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, labels: { 'app.kubernetes.io/name': 'drop', 'app.kubernetes.io/component': name } },
        spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image, imagePullPolicy: 'IfNotPresent' }] },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
    for (const [name] of pods) await k.waitForPodRunning(ns, name, 90_000);
    backend = createKubernetesBackend({
      kubeconfig: k.kubeconfigPath,
      namespaces: [ns],
      log,
      onCall: (_cluster, call) => {
        if (call === 'exec') execs++;
      },
    });
    backends = new Backends([backend]);
    await backends.start();
  }, kubeStartTimeoutMs() + 120_000);

  afterAll(async () => {
    backends?.stop();
    if (k) await k.api('DELETE', `/api/v1/namespaces/${ns}`);
  }, 60_000);

  it(`ends every process of ${SESSIONS} sessions whose clients vanished together, in fewer scans than sessions`, async () => {
    const t = await backends.resolve({ app: 'drop', proc: 'crowd', instance: 'crowd' });
    // A shell with a running child, each.
    const sides = await Promise.all(Array.from({ length: SESSIONS }, () => t.open(spec({ cmd: ['sh', '-c', 'echo READY; sleep 1001; true'] }))));
    await Promise.all(sides.map((p) => started(p, 'READY')));
    // The shell and its sleep at least (and on v4 the stdin pump).
    expect((await markedPids('crowd')).length).toBeGreaterThanOrEqual(2 * SESSIONS);

    const execsBefore = execs;
    const t0 = performance.now();
    // Each end in a turn of its own, as the relay's ends come, one per closed socket.
    const ends: Promise<void>[] = [];
    for (const p of sides) {
      ends.push(p.terminate());
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(ends);
    const seconds = (performance.now() - t0) / 1000;
    const scans = execs - execsBefore;
    expect(await markedPids('crowd')).toEqual([]);
    console.info(`kube mass drop: ${SESSIONS} sessions, all gone in ${seconds.toFixed(2)} s, ${scans} exec scans`);
    // One session's clean-up alone is two scans (SIGHUP, then the check that nothing is left).
    expect(scans).toBeLessThan(SESSIONS);
  }, 120_000);

  it('fails every session of a scan that cannot run (no sh in the image) with ENTRY_CANNOT_REAP, in one scan for them all', async () => {
    const target = { namespace: ns, pod: 'nosh', container: 'main' };
    const before = execs;
    const results = await Promise.all(
      Array.from({ length: 6 }, () => spec().sessionId).map((id) =>
        backend.reaper.signal(target, id, 'HUP').then(
          (n) => `signalled ${n}`,
          (e: EntryError) => e.code,
        ),
      ),
    );
    expect(results).toEqual(Array.from({ length: 6 }, () => 'ENTRY_CANNOT_REAP'));
    expect(execs - before).toBe(1);
  });

  it('runs a scan of the most marks it takes, of the longest session ids, through the apiserver', async () => {
    const target = { namespace: ns, pod: 'crowd', container: 'main' };
    const before = execs;
    const ids = Array.from({ length: MAX_MARKS_PER_SCAN }, () => `md-${randomBytes(32).toString('hex')}`.slice(0, 64));
    expect(await Promise.all(ids.map((id) => backend.reaper.signal(target, id, '0')))).toEqual(ids.map(() => 0));
    expect(execs - before).toBe(1);
  });
});

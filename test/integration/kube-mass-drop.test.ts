import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backends } from '../../broker/backend/backends.js';
import type { EntryError } from '../../broker/errors.js';
import type { KubernetesBackend } from '../../broker/kubernetes/kubernetes-backend.js';
import { execSpecs } from '../helpers/exec-specs.js';
import { MAX_MARKS_PER_SCAN } from '../../broker/kubernetes/scan-batches.js';
import { type KubeCluster, kubeClusterPossible, kubeStartTimeoutMs } from '../helpers/kube-cluster.js';
import { type KubeNamespace, kubeNamespace, labelledPod } from '../helpers/kube-namespace.js';
import { drive } from '../helpers/process-driver.js';

/*
 * Many sessions of one pod losing their clients at once (a load balancer restart): every process
 * of every session must end, with the reaper's scans shared between them rather than one exec
 * per session per step. The scans are counted as the apiserver calls the backend reports for its
 * metrics (`exec`), once every session is open.
 */

const SESSIONS = 24;
describe.skipIf(!kubeClusterPossible())('many Kubernetes sessions of one pod dropped at once', () => {
  let space: KubeNamespace | undefined;
  let k: KubeCluster;
  let ns: string;
  let backend: KubernetesBackend;
  let backends: Backends;
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
    const pods: Array<[string, string]> = [
      ['crowd', 'entry-demo:latest'],
      ['nosh', 'entry-demo:nosh'],
    ];
    space = await kubeNamespace({
      prefix: 'md',
      objects: pods.map(([name, image]) => labelledPod('drop', name, { containers: [{ name: 'main', image, imagePullPolicy: 'IfNotPresent' }] })),
      running: pods.map(([name]) => name),
    });
    ({ cluster: k, ns } = space);
    ({ backend, backends } = await space.serve({
      onCall: (_cluster, call) => {
        if (call === 'exec') execs++;
      },
    }));
  }, kubeStartTimeoutMs() + 120_000);

  afterAll(() => space?.remove(), 60_000);

  it(`ends every process of ${SESSIONS} sessions whose clients vanished together, in fewer scans than sessions`, async () => {
    const t = await backends.resolve({ app: 'drop', proc: 'crowd', instance: 'crowd' });
    // A shell with a running child, each.
    const sides = await Promise.all(Array.from({ length: SESSIONS }, () => t.open(spec({ cmd: ['sh', '-c', 'echo READY; sleep 1001; true'] }))));
    await Promise.all(sides.map((p) => drive(p).until('READY')));
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

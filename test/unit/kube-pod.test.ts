import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../broker/config/config-error.js';
import { KubeClient } from '../../broker/kubernetes/kube-client.js';
import { chooseContainer, downContainer, downReason, downWord, listedState, podMatches, podRecord, podState, podTarget } from '../../broker/kubernetes/pod.js';
import { writeKubeconfig } from '../helpers/kubeconfig.js';

function pod(over: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string>; owner?: string; phase?: string; deleting?: boolean; containers?: string[]; statuses?: unknown[]; restartPolicy?: string; conditions?: unknown[] } = {}) {
  return podRecord({
    metadata: {
      uid: 'u1',
      namespace: 'ns',
      name: over.name ?? 'web-0',
      labels: over.labels ?? { 'app.kubernetes.io/name': 'shop', 'app.kubernetes.io/component': 'web' },
      annotations: over.annotations ?? {},
      ownerReferences: over.owner ? [{ kind: over.owner, controller: true }] : [],
      ...(over.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
      creationTimestamp: '2026-01-01T00:00:00Z',
      resourceVersion: '7',
    },
    spec: { ...(over.restartPolicy ? { restartPolicy: over.restartPolicy } : {}), containers: (over.containers ?? ['main']).map((name) => ({ name, image: `img-${name}` })) },
    status: { phase: over.phase ?? 'Running', ...(over.statuses ? { containerStatuses: over.statuses } : {}), ...(over.conditions ? { conditions: over.conditions } : {}) },
  })!;
}

describe('naming pods', () => {
  it('takes a StatefulSet ordinal from the name, or from the pod-index label', () => {
    expect(podTarget(pod({ owner: 'StatefulSet' }))).toEqual({ app: 'shop', proc: 'web', instance: '0' });
    expect(podTarget(pod({ name: 'web-12', owner: 'StatefulSet' }))!.instance).toBe('12');
    expect(podTarget(pod({ name: 'x', labels: { 'app.kubernetes.io/name': 'a', 'app.kubernetes.io/component': 'b', 'apps.kubernetes.io/pod-index': '3' } }))!.instance).toBe('3');
  });

  it('names a pod without an ordinal (a Deployment\'s, a bare one) by its own name', () => {
    expect(podTarget(pod({ name: 'api-7d4b9c-x2x9q', owner: 'ReplicaSet' }))!.instance).toBe('api-7d4b9c-x2x9q');
    // A numeric suffix alone is no ordinal outside a StatefulSet.
    expect(podTarget(pod({ name: 'demo-1' }))!.instance).toBe('demo-1');
  });

  it('lets each entry.* label win over its Kubernetes counterpart', () => {
    const p = pod({ owner: 'StatefulSet', labels: { 'app.kubernetes.io/name': 'shop', 'app.kubernetes.io/component': 'web', 'entry.app': 'store', 'entry.instance': '07' } });
    expect(podTarget(p)).toEqual({ app: 'store', proc: 'web', instance: '7' });
    expect(podMatches(p, { app: 'store', proc: 'web', instance: '7' })).toBe(true);
    expect(podMatches(p, { app: 'shop', proc: 'web', instance: '0' })).toBe(false);
  });

  it('leaves pods without an app or proc name out, and matches any pod by its name too', () => {
    expect(podTarget(pod({ labels: { 'app.kubernetes.io/name': 'shop' } }))).toBeUndefined();
    expect(podMatches(pod({ owner: 'StatefulSet' }), { app: 'shop', proc: 'web', instance: 'web-0' })).toBe(true);
  });

  it('says running, pending or terminating', () => {
    expect(podState(pod())).toBe('running');
    expect(podState(pod({ phase: 'Pending' }))).toBe('pending');
    expect(podState(pod({ deleting: true }))).toBe('terminating');
    expect(podState(pod({ phase: 'Succeeded' }))).toBe('succeeded');
  });

  it('lists a Running pod whose default container is down (a crash loop) as restarting, as Docker lists such a container', () => {
    const waiting = { name: 'main', containerID: 'docker://a', restartCount: 4, state: { waiting: { reason: 'CrashLoopBackOff' } } };
    const running = { name: 'side', containerID: 'docker://b', restartCount: 0, state: { running: { startedAt: '2026-01-01T00:00:00Z' } } };
    expect(listedState(pod({ containers: ['main', 'side'], statuses: [waiting, running] }))).toBe('restarting');
    expect(listedState(pod({ containers: ['main', 'side'], statuses: [{ ...waiting, state: { terminated: { exitCode: 1 } } }, running] }))).toBe('restarting');
    // The default container runs: the pod is enterable, whatever its sidecar does.
    expect(listedState(pod({ containers: ['side', 'main'], statuses: [waiting, running] }))).toBe('running');
    // No status yet, or not Running: the pod's own state.
    expect(listedState(pod())).toBe('running');
    expect(listedState(pod({ phase: 'Pending', statuses: [waiting] }))).toBe('pending');
    expect(listedState(pod({ deleting: true, statuses: [waiting] }))).toBe('terminating');
  });

  it('lists a Running pod whose default container has ended for good as exited, as Docker lists an ended container', () => {
    const running = { name: 'side', containerID: 'docker://b', restartCount: 0, state: { running: { startedAt: '2026-01-01T00:00:00Z' } } };
    const ended = (exitCode: number) => ({ name: 'main', containerID: 'docker://a', restartCount: 0, state: { terminated: { exitCode, reason: exitCode ? 'Error' : 'Completed' } } });
    const listed = (restartPolicy: string | undefined, exitCode: number) => listedState(pod({ containers: ['main', 'side'], statuses: [ended(exitCode), running], ...(restartPolicy ? { restartPolicy } : {}) }));
    expect(listed('Never', 0)).toBe('exited');
    expect(listed('Never', 1)).toBe('exited');
    expect(listed('OnFailure', 0)).toBe('exited');
    // Started again by the kubelet: restarting.
    expect(listed('OnFailure', 1)).toBe('restarting');
    expect(listed('Always', 0)).toBe('restarting');
    expect(listed(undefined, 0)).toBe('restarting');
  });

  it("says why a pod's container does not run, in the kubelet's words", () => {
    const message = 'Container image "entry-demo:absent" is not present with pull policy of Never';
    const noPull = { name: 'main', restartCount: 0, state: { waiting: { reason: 'ErrImageNeverPull', message } } };
    const running = { name: 'side', containerID: 'docker://b', restartCount: 0, state: { running: { startedAt: '2026-01-01T00:00:00Z' } } };
    const pending = pod({ phase: 'Pending', containers: ['main', 'side'], statuses: [noPull, running] });
    expect(downReason(pending)).toBe(`container main is waiting: ErrImageNeverPull: ${message}`);
    expect(downContainer(pending)?.run.reason).toBe('ErrImageNeverPull');
    // A sidecar that cannot start holds the pod Pending: it is the one named.
    expect(downReason(pod({ phase: 'Pending', containers: ['side', 'main'], statuses: [{ ...noPull, name: 'main', state: { waiting: { reason: 'CreateContainerConfigError', message: 'configmap "x" not found' } } }, running] }))).toBe(
      'container main is waiting: CreateContainerConfigError: configmap "x" not found',
    );
    const ended = { name: 'main', containerID: 'docker://a', restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } };
    expect(downReason(pod({ phase: 'Succeeded', statuses: [ended] }))).toBe('container main has ended: Completed (exit code 0)');
    // Nothing said yet (not scheduled), or everything runs: no reason.
    expect(downReason(pod({ phase: 'Pending' }))).toBe('');
    expect(downReason(pod({ containers: ['side'], statuses: [running] }))).toBe('');
    // A registry's answer reaches a terminal: its control characters are made blanks.
    const hostile = { ...noPull, state: { waiting: { reason: 'ErrImagePull\u001b[2J', message: 'denied\u001b]0;owned\u0007\r\nnext\u009b31m' } } };
    expect(downReason(pod({ phase: 'Pending', statuses: [hostile] }))).toBe('container main is waiting: ErrImagePull [2J: denied ]0;owned next 31m');
    // A registry's long answer is cut.
    expect(downReason(pod({ phase: 'Pending', statuses: [{ ...noPull, state: { waiting: { reason: 'ErrImagePull', message: 'x'.repeat(5000) } } }] })).length).toBeLessThan(400);
  });

  it("says why no node runs a pod, in the scheduler's words, when no container has said anything", () => {
    const message = "0/1 nodes are available: 1 node(s) didn't match node selector.";
    const unschedulable = { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message };
    const p = pod({ phase: 'Pending', conditions: [unschedulable] });
    expect(downReason(p)).toBe(`not scheduled: Unschedulable: ${message}`);
    expect(downWord(p)).toBe('Unschedulable');
    // Scheduled: the condition is True, and nothing is said of it.
    const scheduled = pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] });
    expect([downReason(scheduled), downWord(scheduled)]).toEqual(['', '']);
    // A message without a reason is still told; nothing at all says nothing.
    expect(downReason(pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', message }] }))).toBe(`not scheduled: ${message}`);
    expect(downReason(pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False' }] }))).toBe('');
    // A container that says why wins: it is nearer the cause.
    const noPull = { name: 'main', restartCount: 0, state: { waiting: { reason: 'ErrImageNeverPull', message: 'no image' } } };
    const both = pod({ phase: 'Pending', statuses: [noPull], conditions: [unschedulable] });
    expect([downReason(both), downWord(both)]).toEqual(['container main is waiting: ErrImageNeverPull: no image', 'ErrImageNeverPull']);
    // Its words reach a terminal too, and are cut as the kubelet's are.
    const hostile = pod({ phase: 'Pending', conditions: [{ ...unschedulable, reason: 'Unschedulable\u001b[2J', message: 'x'.repeat(5000) }] });
    expect(downWord(hostile)).toBe('Unschedulable [2J');
    expect(downReason(hostile)).toBe(`not scheduled: Unschedulable [2J: ${'x'.repeat(300)}…`);
  });

  it('chooses the container asked for, else the default-container annotation, else the first', () => {
    const p = pod({ containers: ['side', 'main'], annotations: { 'kubectl.kubernetes.io/default-container': 'main' } });
    expect(chooseContainer(p, '')).toBe('main');
    expect(chooseContainer(p, 'side')).toBe('side');
    expect(chooseContainer(pod({ containers: ['a', 'b'] }), '')).toBe('a');
    expect(() => chooseContainer(p, 'nope')).toThrow(/has no container "nope" \(it has: side, main\)/);
  });
});

describe('loading the Kubernetes identity', () => {
  const dir = mkdtempSync(join(tmpdir(), 'entry-kube-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'kubeconfig');
  writeKubeconfig(file, {
    cluster: { name: 'prod', server: 'https://10.0.0.1:6443' },
    token: 'not-a-real-token',
    contexts: [
      { name: 'a', namespace: 'team' },
      { name: 'b', cluster: 'missing' },
    ],
  });

  it('takes the cluster name and namespace from the context', () => {
    const c = KubeClient.load({ kubeconfig: file });
    expect(c.cluster).toBe('prod');
    expect(c.defaultNamespace).toBe('team');
    expect(c.server).toBe('https://10.0.0.1:6443');
  });

  it('fails with one line naming the setting', () => {
    expect(() => KubeClient.load({ kubeconfig: join(dir, 'none') })).toThrow(ConfigError);
    expect(() => KubeClient.load({ kubeconfig: join(dir, 'none') })).toThrow(/^invalid setting --kubeconfig: cannot read .*: no such file$/);
    expect(() => KubeClient.load({ kubeconfig: file, context: 'c' })).toThrow(/^invalid setting --kube-context: no context "c" in .* \(it has: a, b\)$/);
    expect(() => KubeClient.load({ kubeconfig: file, context: 'b' })).toThrow(/names cluster "missing", which .* does not define/);
    const outside = process.env['KUBERNETES_SERVICE_HOST'];
    delete process.env['KUBERNETES_SERVICE_HOST'];
    try {
      expect(() => KubeClient.load({ kubeconfig: 'in-cluster' })).toThrow(/in-cluster needs KUBERNETES_SERVICE_HOST/);
    } finally {
      if (outside !== undefined) process.env['KUBERNETES_SERVICE_HOST'] = outside;
    }
  });
});

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backends } from '../../broker/backend/backends.js';
import { startTestBroker } from '../helpers/broker.js';
import { runCli } from '../helpers/cli.js';
import { execSpecs } from '../helpers/exec-specs.js';
import { type KubeCluster, kubeClusterPossible, kubeStartTimeoutMs } from '../helpers/kube-cluster.js';
import { type KubeNamespace, kubeNamespace, labelledPod } from '../helpers/kube-namespace.js';
import { eventually } from '../helpers/sessions.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!kubeClusterPossible())('how pods that are not running are listed and refused', () => {
  let space: KubeNamespace | undefined;
  let k: KubeCluster;
  let ns: string;
  let backends: Backends;
  const spec = execSpecs('ks', 500);
  const demo = { image: 'entry-demo:latest', imagePullPolicy: 'IfNotPresent' };
  const side = { name: 'side', ...demo, command: ['sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1; done"] };
  // The default container `main` ends with `exit` while `side` keeps the pod Running.
  const ended: Array<{ name: string; restartPolicy: 'Always' | 'OnFailure' | 'Never'; exit: number; listed: string }> = [
    { name: 'done-never', restartPolicy: 'Never', exit: 0, listed: 'exited' },
    { name: 'failed-never', restartPolicy: 'Never', exit: 3, listed: 'exited' },
    { name: 'done-onfailure', restartPolicy: 'OnFailure', exit: 0, listed: 'exited' },
    { name: 'failing-onfailure', restartPolicy: 'OnFailure', exit: 1, listed: 'restarting' },
    { name: 'done-always', restartPolicy: 'Always', exit: 0, listed: 'restarting' },
  ];
  /** The pod as the apiserver has it, once `ready` holds of it (bounded). */
  const podWhen = async (name: string, ready: (pod: any) => boolean, what: string): Promise<any> => {
    let pod: any;
    for (let i = 0; i < 900; i++) {
      pod = (await k.api('GET', `/api/v1/namespaces/${ns}/pods/${name}`)).body;
      if (ready(pod)) return pod;
      await sleep(100);
    }
    throw new Error(`pod ${name} never ${what}: ${JSON.stringify(pod?.status)}`);
  };
  const mainStatus = (pod: any) => pod?.status?.containerStatuses?.find((c: any) => c.name === 'main');

  beforeAll(async () => {
    space = await kubeNamespace({
      prefix: 'ks',
      objects: [
        ...ended.map((p) => labelledPod('states', p.name, { restartPolicy: p.restartPolicy, containers: [{ name: 'main', ...demo, command: ['sh', '-c', `exit ${p.exit}`] }, side] })),
        // Its image is not on the node, and may not be pulled: it waits with ErrImageNeverPull.
        labelledPod('states', 'nopull', { containers: [{ name: 'main', image: 'entry-demo:absent', imagePullPolicy: 'Never' }] }),
        // No node has the label it asks for: the scheduler leaves it unplaced (Unschedulable).
        labelledPod('states', 'unplaced', { nodeSelector: { 'entry.test/nowhere': 'true' }, containers: [{ name: 'main', ...demo }] }),
      ],
    });
    ({ cluster: k, ns } = space);
    ({ backends } = await space.serve());
  }, kubeStartTimeoutMs() + 120_000);

  afterAll(() => space?.remove(), 60_000);

  it('lists a Running pod whose default container ended for good as exited, and one that will start again as restarting', async () => {
    for (const p of ended) {
      // Running (side runs) with main down: ended, or waiting to start again.
      await podWhen(p.name, (pod) => pod?.status?.phase === 'Running' && mainStatus(pod) !== undefined && !mainStatus(pod).state?.running, 'Running with main down');
      await eventually(async () => (await backends.list()).find((t) => t.name === p.name)?.state === p.listed, `${p.name} listed as ${p.listed}`, 30_000);
    }
    // Entering one is refused as not running, by the kubelet.
    const t = await backends.resolve({ app: 'states', proc: 'done-never', instance: 'done-never' });
    await expect(t.open(spec({ cmd: ['true'] }))).rejects.toMatchObject({ code: 'ENTRY_NOT_RUNNING' });
  });

  it("adds the kubelet's reason to its refusal to exec in a container that has ended or waits to start again", async () => {
    await eventually(async () => (await backends.list()).find((t) => t.name === 'done-never')?.state === 'exited', 'done-never listed as exited', 30_000);
    const ended = await backends.resolve({ app: 'states', proc: 'done-never', instance: 'done-never' });
    await expect(ended.open(spec({ cmd: ['true'] }))).rejects.toMatchObject({ code: 'ENTRY_NOT_RUNNING', message: expect.stringMatching(/container main of .*done-never is not running \(.*\): container main has ended: Completed \(exit code 0\)$/) });
    // The side container runs: entering it works.
    const side = await ended.open(spec({ cmd: ['true'], container: 'side' }));
    await side.terminate();
  });

  it("refuses a pod whose container cannot start with the kubelet's reason, and lists that reason", async () => {
    const pod = await podWhen('nopull', (p) => mainStatus(p)?.state?.waiting?.reason === 'ErrImageNeverPull', 'waiting with ErrImageNeverPull');
    const message: string = mainStatus(pod).state.waiting.message;
    expect(message).toContain('entry-demo:absent');
    await eventually(async () => (await backends.list()).find((t) => t.name === 'nopull')?.reason === 'ErrImageNeverPull', 'nopull listed with its reason', 30_000);
    expect((await backends.list()).find((t) => t.name === 'nopull')).toMatchObject({ state: 'pending', reason: 'ErrImageNeverPull' });
    await expect(backends.resolve({ app: 'states', proc: 'nopull', instance: 'nopull' })).rejects.toMatchObject({
      code: 'ENTRY_NOT_RUNNING',
      message: `container is not running: states/nopull/nopull is pending (nopull): container main is waiting: ErrImageNeverPull: ${message}`,
    });
    // A container that ended has its reason listed too; a running pod has none.
    await eventually(async () => (await backends.list()).find((t) => t.name === 'done-never')?.reason === 'Completed', 'done-never listed as Completed', 30_000);
    // The user's view: enter ls shows the reason beside the state, and entering says it.
    const b = await startTestBroker({ kubeconfig: k.kubeconfigPath, 'kube-namespace': [ns] });
    const dir = mkdtempSync(join(tmpdir(), 'entry-ks-cli-'));
    try {
      const env = { ENTRY_CONFIG_DIR: dir, ENTRY_BROKER: b.url, ENTRY_TOKEN: await b.mint({ apps: ['states'] }) };
      await eventually(async () => (await runCli(['ls', 'states'], env)).stdout.toString().includes('nopull'), 'the broker lists nopull', 30_000);
      const ls = (await runCli(['ls', 'states'], env)).stdout.toString();
      expect(ls).toMatch(/^states\s+nopull\s+nopull\s+pending \(ErrImageNeverPull\)\s/m);
      expect(ls).toMatch(/^states\s+done-never\s+done-never\s+exited \(Completed\)\s/m);
      const entered = await runCli(['states', 'nopull', 'nopull', '--', 'true'], env);
      expect(entered.status).not.toBe(0);
      expect(entered.stderr.toString()).toContain(`states/nopull/nopull is pending (nopull): container main is waiting: ErrImageNeverPull: ${message}`);
    } finally {
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    // Every field the listing gives is in the README's row for GET /api/containers.
    const row = readFileSync(new URL('../../README.md', import.meta.url), 'utf8').split('\n').find((l) => l.startsWith('| `GET /api/containers`'))!;
    for (const key of new Set((await backends.list()).flatMap((t) => Object.keys(t)))) expect(row, key).toContain(`"${key}"`);
  });

  it("refuses a pod no node runs with the scheduler's reason, and lists that reason", async () => {
    const scheduled = (p: any) => p?.status?.conditions?.find((c: any) => c.type === 'PodScheduled');
    const pod = await podWhen('unplaced', (p) => scheduled(p)?.status === 'False' && scheduled(p)?.reason === 'Unschedulable', 'unschedulable');
    const message: string = scheduled(pod).message;
    expect(message).toMatch(/node/);
    await eventually(async () => (await backends.list()).find((t) => t.name === 'unplaced')?.reason === 'Unschedulable', 'unplaced listed with its reason', 30_000);
    expect((await backends.list()).find((t) => t.name === 'unplaced')).toMatchObject({ state: 'pending', reason: 'Unschedulable' });
    await expect(backends.resolve({ app: 'states', proc: 'unplaced', instance: 'unplaced' })).rejects.toMatchObject({
      code: 'ENTRY_NOT_RUNNING',
      message: `container is not running: states/unplaced/unplaced is pending (unplaced): not scheduled: Unschedulable: ${message}`,
    });
  });
});

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { EXEC_RULES, type KubeCluster, kubeClusterPossible, kubeStartTimeoutMs, startKubeCluster } from '../helpers/kube-cluster.js';

/** What a raw pods/exec WebSocket gave back, channel by channel. */
interface ExecResult {
  protocol: string;
  stdout: string;
  stderr: string;
  status: any;
}

/** `pods/exec` over a raw WebSocket, as kubectl and the broker speak it: channel byte, then data. */
function rawExec(k: KubeCluster, token: string, ns: string, pod: string, command: string[], stdin?: Buffer): Promise<ExecResult> {
  const q = new URLSearchParams();
  for (const c of command) q.append('command', c);
  q.set('stdout', 'true');
  q.set('stderr', 'true');
  if (stdin) q.set('stdin', 'true');
  const url = `${k.apiserverUrl.replace(/^https/, 'wss')}/api/v1/namespaces/${ns}/pods/${pod}/exec?${q}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['v5.channel.k8s.io', 'v4.channel.k8s.io'], { ca: k.ca, headers: { authorization: `Bearer ${token}` } });
    const out = { stdout: [] as Buffer[], stderr: [] as Buffer[], status: [] as Buffer[] };
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => reject(Object.assign(new Error(`exec refused: HTTP ${res.statusCode} ${body}`), { statusCode: res.statusCode })));
    });
    ws.on('open', () => {
      if (stdin) ws.send(Buffer.concat([Buffer.from([0]), stdin]));
    });
    ws.on('message', (data: Buffer) => {
      if (data.length === 0) return;
      const channel = data[0];
      const body = data.subarray(1);
      if (channel === 1) out.stdout.push(body);
      else if (channel === 2) out.stderr.push(body);
      else if (channel === 3) out.status.push(body);
    });
    ws.on('error', reject);
    ws.on('close', () =>
      resolve({
        protocol: ws.protocol,
        stdout: Buffer.concat(out.stdout).toString(),
        stderr: Buffer.concat(out.stderr).toString(),
        status: out.status.length ? JSON.parse(Buffer.concat(out.status).toString()) : undefined,
      }),
    );
  });
}

function exitCode(status: any): number {
  if (status?.status === 'Success') return 0;
  const cause = status?.details?.causes?.find((c: any) => c.reason === 'ExitCode');
  return cause ? Number(cause.message) : -1;
}

describe.skipIf(!kubeClusterPossible())('the dev Kubernetes cluster (deploy/dev/kube-up.sh)', () => {
  let k: KubeCluster;
  const ns = `entry-kube-test-${randomBytes(3).toString('hex')}`;
  let podRunningMs = 0;

  beforeAll(async () => {
    k = await startKubeCluster();
    await k.createNamespace(ns);
    const t0 = Date.now();
    const created = await k.api('POST', `/api/v1/namespaces/${ns}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'demo', labels: { 'app.kubernetes.io/name': 'demo', 'app.kubernetes.io/component': 'web' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'main', image: 'entry-demo:latest', imagePullPolicy: 'IfNotPresent' }],
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    await k.waitForPodRunning(ns, 'demo');
    podRunningMs = Date.now() - t0;
    console.log(`kube-cluster: pod Running ${podRunningMs} ms after it was created`);
  }, kubeStartTimeoutMs());

  afterAll(async () => {
    await k?.api('DELETE', `/api/v1/namespaces/${ns}`);
  });

  it('answers as Kubernetes 1.20 with one Ready node', async () => {
    const version = await k.api('GET', '/version');
    expect(version.body.gitVersion).toBe('v1.20.2');
    const node = await k.api('GET', `/api/v1/nodes/${k.nodeName}`);
    expect(node.body.status.conditions.find((c: any) => c.type === 'Ready').status).toBe('True');
    expect(await k.kubectl(['get', 'pod', '-n', ns, 'demo', '-o', 'jsonpath={.status.phase}'])).toBe('Running');
  });

  it("keeps its components' temporary files in its state, not in the TMPDIR of the run that started it", () => {
    // runc keeps an exec's state there; a run's TMPDIR goes as that run ends, while the cluster serves others.
    for (const name of ['dockerd', 'kubelet']) {
      const pid = readFileSync(join(k.stateDir, 'run', `${name}.pid`), 'utf8').trim();
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      expect(env.filter((v) => v.startsWith('TMPDIR=')), name).toEqual([`TMPDIR=${join(k.stateDir, 'tmp')}`]);
    }
  });

  it('runs a raw WebSocket exec: stdout and stderr apart, the exit code from the status channel', async () => {
    const r = await rawExec(k, k.adminToken, ns, 'demo', ['sh', '-c', 'echo out; echo err >&2; exit 3']);
    // 1.20 does not offer v5 (stdin close): the broker must fall back to v4.
    expect(r.protocol).toBe('v4.channel.k8s.io');
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    expect(r.status.reason).toBe('NonZeroExitCode');
    expect(exitCode(r.status)).toBe(3);

    const ok = await rawExec(k, k.adminToken, ns, 'demo', ['head', '-c', '5'], Buffer.from('hello world'));
    expect(ok.stdout).toBe('hello');
    expect(exitCode(ok.status)).toBe(0);
  });

  it('makes limited identities; over WebSocket, 1.20 authorizes pods/exec as get, not create', async () => {
    const reader = await k.createIdentity({ name: 'reader', namespace: ns, rules: [{ resources: ['pods'], verbs: ['get', 'list', 'watch'] }] });
    // Kubernetes 1.20 authorizes a WebSocket exec (a GET) as verb get; SPDY (a POST) as create.
    const execer = await k.createIdentity({ name: 'execer', namespace: ns, rules: EXEC_RULES });
    const creator = await k.createIdentity({
      name: 'creator',
      namespace: ns,
      rules: [
        { resources: ['pods'], verbs: ['get', 'list', 'watch'] },
        { resources: ['pods/exec'], verbs: ['create'] },
      ],
    });
    try {
      // What a broker granted only `create` on pods/exec meets on 1.20 over WebSocket.
      await expect(rawExec(k, creator.token, ns, 'demo', ['true'])).rejects.toMatchObject({ statusCode: 403 });
      expect((await k.api('GET', `/api/v1/namespaces/${ns}/pods`, undefined, reader.token)).status).toBe(200);
      expect((await k.api('GET', '/api/v1/namespaces/default/pods', undefined, reader.token)).status).toBe(403);
      await expect(rawExec(k, reader.token, ns, 'demo', ['true'])).rejects.toMatchObject({ statusCode: 403 });
      const r = await rawExec(k, execer.token, ns, 'demo', ['echo', 'allowed']);
      expect(r.stdout).toBe('allowed\n');
    } finally {
      await reader.remove();
      await execer.remove();
      await creator.remove();
    }
  });
});

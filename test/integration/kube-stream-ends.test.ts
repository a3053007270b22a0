import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execSpecs } from '../helpers/exec-specs.js';
import { Backends } from '../../broker/backend/backends.js';
import type { EntryError } from '../../broker/errors.js';
import { createKubernetesBackend } from '../../broker/kubernetes/kubernetes-backend.js';
import { POD_STOP_SETTLE_MS } from '../../broker/kubernetes/pod-fate.js';
import { createLogger } from '../../broker/log.js';
import { type KubeCluster, kubeClusterPossible, kubeStartTimeoutMs } from '../helpers/kube-cluster.js';
import { type KubeNamespace, kubeNamespace, labelledPod } from '../helpers/kube-namespace.js';
import { drive, exitOf } from '../helpers/process-driver.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const log = createLogger(process.env.ENTRY_TEST_LOG === '1' ? 'debug' : 'silent');

describe.skipIf(!kubeClusterPossible())('how a Kubernetes session ends when its container or its link goes', () => {
  let space: KubeNamespace | undefined;
  let k: KubeCluster;
  let ns: string;
  let backends: Backends;
  const dir = mkdtempSync(join(tmpdir(), 'entry-ke-'));
  const spec = execSpecs('ke', 500);
  // PID 1 ends on SIGTERM, as most servers do.
  const pods: Array<[string, 'Always' | 'Never']> = [
    ['restarts', 'Always'],
    ['stops', 'Never'],
    ['steady', 'Always'],
  ];
  const resolve = (b: Backends, name: string) => b.resolve({ app: 'ends', proc: name, instance: name });

  /** A backend reaching the apiserver through `proxy`, a TCP relay the test can break. */
  const viaProxy = async (proxy: TcpProxy, name: string): Promise<Backends> => {
    await proxy.start();
    const file = join(dir, name);
    writeFileSync(file, readFileSync(k.kubeconfigPath, 'utf8').replace(/server: \S+/, `server: https://127.0.0.1:${proxy.port}`));
    const b = new Backends([createKubernetesBackend({ kubeconfig: file, namespaces: [ns], log })]);
    await b.start();
    return b;
  };

  beforeAll(async () => {
    space = await kubeNamespace({
      prefix: 'ke',
      objects: pods.map(([name, restartPolicy]) =>
        labelledPod('ends', name, {
          restartPolicy,
          containers: [{ name: 'main', image: 'entry-demo:latest', imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', "echo pid1-up; trap 'exit 0' TERM; while :; do sleep 1; done"] }],
        }),
      ),
      running: pods.map(([name]) => name),
    });
    ({ cluster: k, ns } = space);
    ({ backends } = await space.serve());
  }, kubeStartTimeoutMs() + 120_000);

  afterAll(async () => {
    await space?.remove();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  for (const [name, policy] of pods.slice(0, 2)) {
    it(`ends a session with ENTRY_CONTAINER_GONE, not exit 137, when its container's first process exits (restartPolicy ${policy}); a command's own SIGKILL stays 137`, async () => {
      const t = await resolve(backends, name);
      // Its own SIGKILL ends it at once: the wrapper that saw it die lives on, so the container
      // does not stop (the pod was watched POD_STOP_SETTLE_MS for that).
      const p = await t.open(spec({ cmd: ['sh', '-c', 'kill -9 $$'] }));
      const t0 = performance.now();
      expect(exitOf(await drive(p).done)).toBe(137);
      const took = performance.now() - t0;
      console.log(`kill -9 $$ in ${name}: ended ${Math.round(took)} ms after the open`);
      expect(took).toBeLessThan(POD_STOP_SETTLE_MS);
      const d = drive(await t.open(spec({ cmd: ['sh', '-c', 'echo started; sleep 1000'] })));
      await d.until('started');
      await k.kubectl(['exec', '-n', ns, name, '-c', 'main', '--', 'kill', '-TERM', '1']);
      expect(String(exitOf(await d.done))).toMatch(new RegExp(`^error ENTRY_CONTAINER_GONE: .*${name} stopped`));
    });
  }

  it('ends /attach with ENTRY_CLUSTER_UNAVAILABLE, not "container stopped", when only its link to the apiserver drops, and with ENTRY_CONTAINER_GONE when its container restarts', async () => {
    const proxy = new TcpProxy(k.apiserverUrl);
    const b = await viaProxy(proxy, 'attach');
    try {
      const d = drive(await (await resolve(b, 'steady')).attach());
      await d.until('pid1-up');
      proxy.cut(60_000);
      expect(String(exitOf(await d.done))).toMatch(/^error ENTRY_CLUSTER_UNAVAILABLE: .*log stream of .*steady/);
    } finally {
      b.stop();
      await proxy.stop();
    }
    // Resolved again: the container may have restarted in an earlier test.
    const d = drive(await (await resolve(backends, 'restarts')).attach());
    await d.until('pid1-up');
    await k.kubectl(['exec', '-n', ns, 'restarts', '-c', 'main', '--', 'kill', '-TERM', '1']);
    expect(String(exitOf(await d.done))).toMatch(/^error ENTRY_CONTAINER_GONE: .*restarts stopped/);
  });

  it('ends a session whose exec stream breaks with ENTRY_STREAM_LOST and the close code, not "cluster unreachable"', async () => {
    const proxy = new TcpProxy(k.apiserverUrl);
    const b = await viaProxy(proxy, 'stream');
    try {
      const p = await (await resolve(b, 'steady')).open(spec({ cmd: ['sh', '-c', 'echo started; exec sleep 1001'] }));
      const d = drive(p);
      await d.until('started');
      proxy.cut(60_000);
      expect(exitOf(await d.done)).toMatch(/^error ENTRY_STREAM_LOST: .*ended without an exit status \(close code \d+\)/);
      // Its clean-up cannot reach the cluster now; the namespace goes at the end with the command.
      await p.terminate().catch(() => undefined);
    } finally {
      b.stop();
      await proxy.stop();
    }
  });

  it('times an exec open out at the time asked for over TLS, with that time in the message', async () => {
    const proxy = new TcpProxy(k.apiserverUrl);
    const b = await viaProxy(proxy, 'timeout');
    try {
      const t = await resolve(b, 'steady');
      // Every link, open or new, carries nothing from now on: a network that drops packets.
      proxy.freeze();
      proxy.stall(60_000);
      const openTimeoutMs = 2_000;
      const t0 = performance.now();
      const err = await t.open(spec({ cmd: ['true'], openTimeoutMs })).then(
        () => undefined,
        (e: unknown) => e as EntryError,
      );
      const took = performance.now() - t0;
      expect(err).toMatchObject({ code: 'ENTRY_CLUSTER_UNAVAILABLE', message: expect.stringContaining(`no answer within ${openTimeoutMs} ms`) });
      expect(took).toBeGreaterThanOrEqual(openTimeoutMs - 50);
      expect(took).toBeLessThan(openTimeoutMs * 1.5);
    } finally {
      b.stop();
      await proxy.stop();
    }
  });

  it('says a command line too long for the exec URL is too long, and to pass data on stdin', async () => {
    const t = await resolve(backends, 'steady');
    const big = Array.from({ length: 11 }, () => 'x'.repeat(100_000));
    const err = await t.open(spec({ cmd: ['true', ...big] })).then(
      () => undefined,
      (e: unknown) => e as EntryError,
    );
    expect(err).toMatchObject({ code: 'ENTRY_BAD_REQUEST', message: expect.stringContaining('the command line is too long for Kubernetes exec, which carries it in the URL; pass data on stdin') });
  });
});

import { randomBytes } from 'node:crypto';
import { Backends } from '../../broker/backend/backends.js';
import { createKubernetesBackend, type KubernetesBackend, type KubernetesWiring } from '../../broker/kubernetes/kubernetes-backend.js';
import { createLogger } from '../../broker/log.js';
import { type KubeCluster, startKubeCluster } from './kube-cluster.js';

const log = createLogger(process.env.ENTRY_TEST_LOG === '1' ? 'debug' : 'silent');

/** A Pod, or an apps/v1 Deployment or StatefulSet, as it is POSTed. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [key: string]: unknown };
  spec: unknown;
}

/** A Pod with the recommended labels, app `app` and component `name`, that ends within 1 s of its deletion. */
export function labelledPod(app: string, name: string, spec: { containers: unknown[]; [key: string]: unknown }): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { 'app.kubernetes.io/name': app, 'app.kubernetes.io/component': name } },
    spec: { terminationGracePeriodSeconds: 1, ...spec },
  };
}

export interface KubeNamespace {
  cluster: KubeCluster;
  /** `entry-<prefix>-<6 hex digits>`: a run never meets another's. */
  ns: string;
  /** Creates a Pod, Deployment or StatefulSet in the namespace; fails unless the apiserver made it. */
  create(object: KubeObject): Promise<void>;
  /** Starts a Kubernetes backend serving only this namespace, with the admin kubeconfig; remove() stops it. */
  serve(wiring?: Pick<KubernetesWiring, 'onCall'>): Promise<{ backend: KubernetesBackend; backends: Backends }>;
  /** Stops the backends it served and deletes the namespace, with everything in it. */
  remove(): Promise<void>;
}

/**
 * A fresh namespace on the dev cluster (started or reused), holding `objects`, created in order,
 * once the pods named in `running` run. When that fails, the namespace is deleted again.
 */
export async function kubeNamespace(opts: { prefix: string; objects?: KubeObject[]; running?: string[] }): Promise<KubeNamespace> {
  const cluster = await startKubeCluster();
  const ns = `entry-${opts.prefix}-${randomBytes(3).toString('hex')}`;
  const served: Backends[] = [];
  const create = async (o: KubeObject) => {
    // pods, deployments, statefulsets: these kinds' plurals are regular.
    const path = `${o.apiVersion === 'v1' ? '/api/v1' : `/apis/${o.apiVersion}`}/namespaces/${ns}/${o.kind.toLowerCase()}s`;
    const r = await cluster.api('POST', path, o);
    if (r.status !== 201) throw new Error(`${o.kind} ${o.metadata.name} not created: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  };
  const remove = async () => {
    for (const b of served.splice(0)) b.stop();
    await cluster.api('DELETE', `/api/v1/namespaces/${ns}`);
  };
  try {
    await cluster.createNamespace(ns);
    for (const o of opts.objects ?? []) await create(o);
    for (const pod of opts.running ?? []) await cluster.waitForPodRunning(ns, pod, 90_000);
  } catch (err) {
    await remove().catch(() => undefined);
    throw err;
  }
  return {
    cluster,
    ns,
    create,
    serve: async (wiring = {}) => {
      const backend = createKubernetesBackend({ kubeconfig: cluster.kubeconfigPath, namespaces: [ns], log, ...wiring });
      const backends = new Backends([backend]);
      served.push(backends);
      await backends.start();
      return { backend, backends };
    },
    remove,
  };
}

import { randomBytes } from 'node:crypto';
import type { RawSettings } from '../../broker/config/config.js';
import { containerProcesses, TestContainers } from './containers.js';
import { kubeStartTimeoutMs, startKubeCluster, type KubeCluster } from './kube-cluster.js';

/** A target the behaviour suites enter, on whichever backend runs it. */
export interface TargetHandle {
  /** Command lines of the processes running in it now. */
  processes(): Promise<string[]>;
}

/**
 * One backend, as the behaviour suites see it: the broker settings that serve it, a way to
 * start labelled targets from the demo images, and to look inside them. The same suite runs
 * over every entry of BACKENDS.
 */
export interface BackendFixture {
  readonly kind: 'docker' | 'kubernetes';
  /** Broker settings for this backend only. */
  settings(): RawSettings;
  /** A running target app/proc/instance from `image` (entry-demo:latest by default). */
  target(app: string, proc: string, instance: number, image?: string): Promise<TargetHandle>;
  /** Removes every target it started. */
  cleanup(): Promise<void>;
  /** How long setting up may take (a fresh machine builds the cluster first). */
  readonly setupTimeoutMs: number;
}

class DockerFixture implements BackendFixture {
  readonly kind = 'docker';
  readonly setupTimeoutMs = 60_000;
  private readonly containers = new TestContainers();

  settings(): RawSettings {
    return {};
  }

  async target(app: string, proc: string, instance: number, image?: string): Promise<TargetHandle> {
    const id = await this.containers.entry(app, proc, instance, image);
    return { processes: () => containerProcesses(id) };
  }

  cleanup(): Promise<void> {
    return this.containers.removeAll();
  }
}

/** Pods in a namespace of the suite's own, on the dev cluster (deploy/dev/kube-up.sh). */
class KubernetesFixture implements BackendFixture {
  readonly kind = 'kubernetes';
  readonly setupTimeoutMs = kubeStartTimeoutMs();
  private readonly namespace = `entry-t-${randomBytes(3).toString('hex')}`;
  private cluster: KubeCluster | undefined;
  private ready: Promise<void> | undefined;

  private async ensure(): Promise<KubeCluster> {
    this.ready ??= (async () => {
      this.cluster = await startKubeCluster();
      const res = await this.cluster.api('POST', '/api/v1/namespaces', { metadata: { name: this.namespace } });
      if (res.status !== 201) throw new Error(`namespace ${this.namespace}: ${res.status} ${JSON.stringify(res.body)}`);
    })();
    await this.ready;
    return this.cluster!;
  }

  settings(): RawSettings {
    if (!this.cluster) throw new Error('start a target before the broker: the cluster comes up with the first one');
    return { kubeconfig: this.cluster.kubeconfigPath, 'kube-namespace': [this.namespace] };
  }

  async target(app: string, proc: string, instance: number, image = 'entry-demo:latest'): Promise<TargetHandle> {
    const cluster = await this.ensure();
    const name = `${app}-${proc}-${instance}`.toLowerCase();
    const pod = {
      metadata: { name, labels: { 'entry.app': app, 'entry.proc': proc, 'entry.instance': String(instance) } },
      spec: {
        // A fresh namespace has no service-account token yet, and these pods need none.
        automountServiceAccountToken: false,
        terminationGracePeriodSeconds: 0,
        containers: [{ name: 'main', image, imagePullPolicy: 'IfNotPresent' }],
      },
    };
    const res = await cluster.api('POST', `/api/v1/namespaces/${this.namespace}/pods`, pod);
    if (res.status !== 201) throw new Error(`pod ${name}: ${res.status} ${JSON.stringify(res.body)}`);
    await cluster.waitForPodRunning(this.namespace, name);
    const ns = this.namespace;
    return {
      // Every process's command line, read inside the pod (the demo images have sh and cat).
      processes: async () => {
        const out = await cluster.kubectl(['exec', '-n', ns, name, '--', 'sh', '-c', 'for d in /proc/[0-9]*; do [ "${d#/proc/}" = "$$" ] || tr "\\0" " " < $d/cmdline 2>/dev/null && echo; done']);
        return out.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('tr ') && !l.includes('/proc/[0-9]'));
      },
    };
  }

  async cleanup(): Promise<void> {
    if (!this.cluster) return;
    await this.cluster.api('DELETE', `/api/v1/namespaces/${this.namespace}`);
  }
}

/** Broker settings as command-line flags, for a broker process (a list setting takes its values after one flag). */
export function flagsOf(settings: RawSettings): string[] {
  return Object.entries(settings).flatMap(([k, v]) => [`--${k}`, ...(Array.isArray(v) ? v.map(String) : [String(v)])]);
}

/** Every backend the behaviour suites run over. */
export const BACKENDS: ReadonlyArray<() => BackendFixture> = [() => new DockerFixture(), () => new KubernetesFixture()];

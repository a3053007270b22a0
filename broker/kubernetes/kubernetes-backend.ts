import type { Backend, ExecSpec, HostAnswer, LeftoverPlace, ResolvedTarget, Target, TargetInfo } from '../backend/backend.js';
import { EntryError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ProcessSide } from '../session/types.js';
import { KubeExecProcess, type PodFate } from './exec-process.js';
import { failureText, type KubeCallObserver, KubeClient, KubeHttpError } from './kube-client.js';
import { openPodLogs } from './logs-process.js';
import { chooseContainer, containerDownReason, containerRuns, downReason, downWord, ENTRY_LABELS, KUBE_LABELS, listedState, podMatches, type PodRecord, podRecord, podState, podTarget } from './pod.js';
import { PodIndex, type PodIndexTiming } from './pod-index.js';
import { PodReaper } from './pod-reaper.js';

/** A running pod, as the rest of the broker sees it. */
class PodTarget implements ResolvedTarget {
  readonly backend = 'kubernetes';
  readonly host: string;
  readonly namespace: string;
  readonly name: string;
  readonly id: string;
  readonly image: string;
  readonly state: string;
  readonly downReason: string;

  constructor(
    private readonly owner: KubernetesBackend,
    private readonly pod: PodRecord,
  ) {
    this.host = owner.client.cluster;
    this.namespace = pod.namespace;
    this.name = pod.name;
    this.id = pod.uid;
    this.state = podState(pod);
    this.downReason = this.state === 'running' ? '' : downReason(pod);
    this.image = defaultImage(pod);
  }

  async open(spec: ExecSpec): Promise<ProcessSide> {
    const container = chooseContainer(this.pod, spec.container);
    const opened = Date.now();
    return KubeExecProcess.open(this.owner.client, this.owner.reaper, {
      namespace: this.namespace,
      pod: this.name,
      container,
      spec,
      podFate: () => this.owner.podFate(this.pod, container, opened),
      downReason: containerDownReason(this.pod, container),
    });
  }

  async attach(): Promise<ProcessSide> {
    const container = chooseContainer(this.pod, '');
    const opened = Date.now();
    return openPodLogs(this.owner.client, this.namespace, this.name, container, () => this.owner.podFate(this.pod, container, opened));
  }
}

function defaultImage(p: PodRecord): string {
  try {
    return p.images[chooseContainer(p, '')] ?? '';
  } catch {
    return '';
  }
}

export interface KubernetesBackendOptions {
  timing?: Partial<PodIndexTiming>;
  /** Told when the cluster's watch comes up or goes down. */
  onChange?: (cluster: string, up: boolean) => void;
}

/**
 * Kubernetes pods: named by `entry.*` labels or the recommended `app.kubernetes.io/*` labels and
 * a StatefulSet ordinal, kept current from a pod watch; processes are `pods/exec` WebSockets,
 * /attach is the container's log, and a session's leftovers are ended by a second exec.
 */
export class KubernetesBackend implements Backend {
  readonly kind = 'kubernetes';
  readonly index: PodIndex;
  readonly reaper: PodReaper;

  constructor(
    readonly client: KubeClient,
    namespaces: readonly string[],
    private readonly log: Logger,
    options: KubernetesBackendOptions = {},
  ) {
    this.reaper = new PodReaper(client, log);
    this.index = new PodIndex(client, namespaces, log, options.timing, (up) => options.onChange?.(client.cluster, up));
  }

  get cluster(): string {
    return this.client.cluster;
  }

  async start(): Promise<void> {
    await this.index.start();
    if (this.index.up) this.log.info('kubernetes cluster indexed', { cluster: this.cluster, server: this.client.server, namespaces: this.index.namespaces.map((n) => n || '*'), pods: this.index.size });
  }

  stop(): void {
    this.index.stop();
  }

  status(): Record<string, boolean> {
    return { [this.cluster]: this.index.up };
  }

  gauges(): Array<{ name: string; up: boolean; containers: number }> {
    return [{ name: this.cluster, up: this.index.up, containers: this.index.size }];
  }

  private unreachable(why: string): HostAnswer {
    return { host: this.cluster, ok: false, label: `cluster ${this.cluster}`, why, unreachable: 'ENTRY_CLUSTER_UNAVAILABLE' };
  }

  private found(pods: PodRecord[]): HostAnswer {
    return { host: this.cluster, ok: true, found: pods.map((p) => new PodTarget(this, p)) };
  }

  /**
   * From the index while the watch is up; a cluster that is down answers at once. A miss (nothing
   * running) is checked once against the apiserver, since a pod that started a moment ago may not
   * have reached the index yet.
   */
  async find(target: Target): Promise<HostAnswer[]> {
    if (!this.index.up) return [this.unreachable(this.index.connecting ? 'connecting' : this.index.downReason)];
    const pods = this.index.lookup(target);
    if (pods.some((p) => podState(p) === 'running')) return [this.found(pods)];
    try {
      return [this.found(await this.index.confirm(() => this.listMatching(target)))];
    } catch (err) {
      return [this.unreachable(`listing pods: ${failureText(err)}`)];
    }
  }

  /** A pod that is gone, or was replaced by one of the same name, took the session's processes with it. */
  async endLeftovers(place: LeftoverPlace, session: string, graceMs: number): Promise<boolean> {
    let pod: PodRecord | undefined;
    try {
      pod = podRecord(await this.client.getJson(`/api/v1/namespaces/${encodeURIComponent(place.namespace)}/pods/${encodeURIComponent(place.name)}`, 'pod_get', { timeoutMs: 5_000 }));
    } catch (err) {
      if (err instanceof KubeHttpError && err.statusCode === 404) return false;
      throw err;
    }
    if (!pod || pod.uid !== place.id || podState(pod) !== 'running') return false;
    let container: string;
    try {
      container = chooseContainer(pod, place.container);
    } catch {
      return false;
    }
    await this.reaper.terminate({ namespace: place.namespace, pod: place.name, container }, session, graceMs);
    return true;
  }

  /** The pods `target` names, asked of the apiserver by label (both naming schemes). */
  private async listMatching(target: Target): Promise<PodRecord[]> {
    const selectors = [`${ENTRY_LABELS.app}=${target.app},${ENTRY_LABELS.proc}=${target.proc}`, `${KUBE_LABELS.app}=${target.app},${KUBE_LABELS.proc}=${target.proc}`];
    const paths = this.index.namespaces.map((ns) => (ns ? `/api/v1/namespaces/${encodeURIComponent(ns)}/pods` : '/api/v1/pods'));
    const seen = new Map<string, PodRecord>();
    await Promise.all(
      paths.flatMap((path) =>
        selectors.map(async (sel) => {
          let list: { items?: unknown[] };
          try {
            list = await this.client.getJson<{ items?: unknown[] }>(`${path}?${new URLSearchParams({ labelSelector: sel })}`, 'pod_list', { timeoutMs: 5_000 });
          } catch (err) {
            // A name that cannot be a label value (over 63 characters) names no pod.
            if (err instanceof KubeHttpError && err.statusCode === 400) return;
            throw err;
          }
          for (const item of list.items ?? []) {
            const p = podRecord(item);
            if (p && podMatches(p, target)) seen.set(p.uid, p);
          }
        }),
      ),
    );
    return [...seen.values()];
  }

  async list(): Promise<TargetInfo[]> {
    if (!this.index.up) throw new EntryError('ENTRY_CLUSTER_UNAVAILABLE', `cluster ${this.cluster} unreachable (${this.index.connecting ? 'connecting' : this.index.downReason})`);
    const out: TargetInfo[] = [];
    for (const p of this.index.all()) {
      const t = podTarget(p);
      if (!t) continue;
      const state = listedState(p);
      const reason = state === 'running' ? '' : downWord(p);
      out.push({ ...t, backend: 'kubernetes', host: this.cluster, namespace: p.namespace, name: p.name, state, ...(reason ? { reason } : {}), image: defaultImage(p), created: p.created, containers: [...p.containers] });
    }
    return out;
  }

  /**
   * What became of the pod's container since `pod` was read: `stopped` (the pod gone, another pod
   * by its name, the container not running, or running again as a new run: another container ID
   * or a higher restart count, started since `since`), `deleting` (the pod is being deleted; its
   * containers may run on through their grace period), `running`, or `unknown` when the
   * apiserver does not answer.
   */
  async podFate(pod: PodRecord, container: string, since: number): Promise<PodFate> {
    try {
      const o = await this.client.getJson<any>(`/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}`, 'pod_get', { timeoutMs: 3_000 });
      if (o?.metadata?.uid !== pod.uid) return 'stopped';
      const status = (o?.status?.containerStatuses ?? []).find((c: any) => c?.name === container);
      if (o?.status?.phase !== 'Running' || (status !== undefined && !status.state?.running)) return 'stopped';
      const before = pod.runs[container];
      const now = containerRuns(o.status)[container];
      // A new run that started before the session did is the one the session ran in (the pod
      // index had not seen the restart yet): not a stop. startedAt has whole seconds.
      const newRun = before && now && ((before.id && now.id !== before.id) || now.restarts > before.restarts);
      if (newRun && !(Date.parse(status?.state?.running?.startedAt ?? '') < since - 1_000)) return 'stopped';
      return o?.metadata?.deletionTimestamp ? 'deleting' : 'running';
    } catch (err) {
      return err instanceof KubeHttpError && err.statusCode === 404 ? 'stopped' : 'unknown';
    }
  }
}

export interface KubernetesWiring {
  /** A kubeconfig file, or `in-cluster` for the pod's own service account. */
  kubeconfig: string | 'in-cluster';
  /** A context of that file; its current context when absent. */
  context?: string | null | undefined;
  /** Namespaces served; empty: every namespace the identity may list (else its own namespace). */
  namespaces: string[];
  log: Logger;
  /** Told of every apiserver call (metrics). */
  onCall?: KubeCallObserver | undefined;
  timing?: Partial<PodIndexTiming>;
  onChange?: (cluster: string, up: boolean) => void;
}

/**
 * The Kubernetes backend as configured. Throws ConfigError (one clear line) for an unreadable
 * kubeconfig or an unknown context; an unreachable apiserver is not a configuration error; the
 * backend answers "unreachable" until it comes.
 */
export function createKubernetesBackend(w: KubernetesWiring): KubernetesBackend {
  const client = KubeClient.load({ kubeconfig: w.kubeconfig, context: w.context, onCall: w.onCall });
  return new KubernetesBackend(client, w.namespaces, w.log, { ...(w.timing ? { timing: w.timing } : {}), ...(w.onChange ? { onChange: w.onChange } : {}) });
}

import { EntryError } from '../errors.js';
import { LogStreamProcess } from '../backend/log-stream-process.js';
import { failureText, isUnreachable, type KubeClient, KubeHttpError } from './kube-client.js';
import { type PodFate, settledFate } from './pod-fate.js';

/** How much history /attach replays before following, like `kubectl logs --tail`. */
const ATTACH_TAIL_LINES = 100;

/**
 * A pod container's own output (`kubectl logs -f --tail=100`) for /attach. Kubernetes keeps
 * one log per container, stdout and stderr interleaved, so it all arrives as stdout; the
 * apiserver ends the stream when the container stops, and when its link breaks: `podFate` (see
 * KubernetesBackend.podFate) tells which.
 */
export async function openPodLogs(client: KubeClient, namespace: string, pod: string, container: string, podFate: () => Promise<PodFate>): Promise<LogStreamProcess> {
  const q = new URLSearchParams({ follow: 'true', tailLines: String(ATTACH_TAIL_LINES), container });
  try {
    const res = await client.stream(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log?${q}`, 'log', { timeoutMs: 30_000 });
    // As Docker's /attach: the container gone (or running again as a new run) is its story, one
    // that runs on is the link's. The stream ends as the container does, before the apiserver
    // has its status: a running one is given time to say it stopped.
    const endReason = async (): Promise<EntryError> => {
      const fate = await settledFate(podFate, (f) => f === 'running');
      if (fate === 'stopped' || fate === 'deleting') return new EntryError('ENTRY_CONTAINER_GONE', `pod ${namespace}/${pod} stopped`);
      return new EntryError('ENTRY_CLUSTER_UNAVAILABLE', `the log stream of ${namespace}/${pod} from cluster ${client.cluster} ended while its container ${fate === 'running' ? 'runs' : 'may run'}`);
    };
    return new LogStreamProcess(res, undefined, endReason);
  } catch (err) {
    if (err instanceof KubeHttpError) {
      if (err.statusCode === 404) throw new EntryError('ENTRY_CONTAINER_GONE', `pod ${namespace}/${pod} no longer exists`);
      if (err.statusCode === 403) throw new EntryError('ENTRY_EXEC_FAILED', `the broker's Kubernetes identity may not read the log of ${namespace}/${pod} (it needs get on pods/log): ${err.message}`);
      throw new EntryError('ENTRY_EXEC_FAILED', `attaching to ${namespace}/${pod}: ${err.message}`);
    }
    if (isUnreachable(err)) throw new EntryError('ENTRY_CLUSTER_UNAVAILABLE', `cluster ${client.cluster} unreachable: ${failureText(err)}`);
    throw new EntryError('ENTRY_EXEC_FAILED', `attaching to ${namespace}/${pod}: ${failureText(err)}`);
  }
}

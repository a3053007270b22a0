import { EntryError } from '../errors.js';
import { LogStreamProcess } from '../backend/log-stream-process.js';
import { failureText, isUnreachable, type KubeClient, KubeHttpError } from './kube-client.js';

/** How much history /attach replays before following, like `kubectl logs --tail`. */
const ATTACH_TAIL_LINES = 100;

/**
 * A pod container's own output (`kubectl logs -f --tail=100`) for /attach. Kubernetes keeps
 * one log per container, stdout and stderr interleaved, so it all arrives as stdout; the
 * apiserver ends the stream when the container stops.
 */
export async function openPodLogs(client: KubeClient, namespace: string, pod: string, container: string): Promise<LogStreamProcess> {
  const q = new URLSearchParams({ follow: 'true', tailLines: String(ATTACH_TAIL_LINES), container });
  try {
    const res = await client.stream(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log?${q}`, 'log', { timeoutMs: 30_000 });
    return new LogStreamProcess(res);
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

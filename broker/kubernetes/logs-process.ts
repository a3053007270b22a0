import type { IncomingMessage } from 'node:http';
import { EntryError } from '../errors.js';
import type { ProcessEvents, ProcessSide } from '../session/types.js';
import { failureText, isUnreachable, type KubeClient, KubeHttpError } from './kube-client.js';

/** How much history /attach replays before following, like `kubectl logs --tail`. */
const ATTACH_TAIL_LINES = 100;

/**
 * A pod container's own output (`kubectl logs -f --tail=100`) as a read-only process side: what
 * /attach relays. Kubernetes keeps one log per container, stdout and stderr interleaved, so it
 * all arrives as stdout. Input is ignored; it ends with ENTRY_CONTAINER_GONE when the stream
 * ends, which the apiserver does when the container stops.
 */
export class PodLogsProcess implements ProcessSide {
  private events: ProcessEvents | undefined;
  private ended = false;

  private constructor(private readonly res: IncomingMessage) {}

  static async open(client: KubeClient, namespace: string, pod: string, container: string): Promise<PodLogsProcess> {
    const q = new URLSearchParams({ follow: 'true', tailLines: String(ATTACH_TAIL_LINES), container });
    try {
      const res = await client.stream(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log?${q}`, 'log', { timeoutMs: 30_000 });
      res.pause();
      return new PodLogsProcess(res);
    } catch (err) {
      if (err instanceof KubeHttpError) {
        if (err.statusCode === 404) throw new EntryError('ENTRY_CONTAINER_GONE', `pod ${namespace}/${pod} no longer exists`);
        if (err.statusCode === 403) throw new EntryError('ENTRY_EXEC_FAILED', `the broker's Kubernetes identity may not read the log of ${namespace}/${pod} (it needs get on pods/log): ${err.message}`);
        throw new EntryError('ENTRY_EXEC_FAILED', `attaching to ${namespace}/${pod}: ${err.message}`);
      }
      if (isUnreachable(err)) throw new EntryError('ENTRY_DOCKER_UNAVAILABLE', `cluster ${client.cluster} unreachable: ${failureText(err)}`);
      throw new EntryError('ENTRY_EXEC_FAILED', `attaching to ${namespace}/${pod}: ${failureText(err)}`);
    }
  }

  start(events: ProcessEvents): void {
    this.events = events;
    this.res.on('data', (c: Buffer) => events.output('stdout', c));
    const end = () => this.end();
    this.res.on('end', end);
    this.res.on('close', end);
    this.res.on('error', end);
    this.res.resume();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.events?.end({ error: new EntryError('ENTRY_CONTAINER_GONE') });
  }

  write(): boolean {
    return true;
  }

  endInput(): void {}

  resize(): void {}

  signal(): void {}

  pauseOutput(): void {
    this.res.pause();
  }

  resumeOutput(): void {
    this.res.resume();
  }

  async terminate(): Promise<void> {
    this.ended = true;
    this.res.destroy();
  }
}

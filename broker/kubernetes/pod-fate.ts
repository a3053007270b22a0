import { setTimeout as sleep } from 'node:timers/promises';

/** See KubernetesBackend.podFate. */
export type PodFate = 'running' | 'deleting' | 'stopped' | 'unknown';

/**
 * How long a container's end is waited for once a stream suggests it: the apiserver reports a
 * stopped container a second or so after the kubelet sees it (its relist is 1 s, then a sync).
 */
export const POD_STOP_SETTLE_MS = 3_000;
const POD_STOP_POLL_MS = 250;

/**
 * Asks `fate` again while `waitOn` holds of its answer, for at most POD_STOP_SETTLE_MS; the last
 * answer. A question that throws is answered `unknown`.
 */
export async function settledFate(fate: () => Promise<PodFate>, waitOn: (f: PodFate) => boolean): Promise<PodFate> {
  const ask = () => fate().catch(() => 'unknown' as const);
  const until = performance.now() + POD_STOP_SETTLE_MS;
  let now = await ask();
  while (waitOn(now) && performance.now() < until) {
    await sleep(POD_STOP_POLL_MS);
    now = await ask();
  }
  return now;
}

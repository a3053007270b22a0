import type { Target } from '../backend/backend.js';
import { cutText } from '../cut-text.js';
import { EntryError } from '../errors.js';

/** What the backend keeps of a pod: names, labels, phase and containers. */
export interface PodRecord {
  uid: string;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Pending, Running, Succeeded, Failed, Unknown. */
  phase: string;
  /** deletionTimestamp is set: the pod is being stopped. */
  terminating: boolean;
  /** Owner kind (StatefulSet, ReplicaSet, …); '' for a bare pod. */
  owner: string;
  /** spec.restartPolicy: Always (the default), OnFailure or Never. */
  restartPolicy: string;
  /** spec.containers, in order (init and ephemeral containers are not enterable). */
  containers: string[];
  images: Record<string, string>;
  created: string;
  resourceVersion: string;
  /** Each started container's current run, as the kubelet last reported it. */
  runs: Record<string, ContainerRun>;
  /** Why no node runs it, as the scheduler last said (condition PodScheduled False); undefined once scheduled. */
  unscheduled?: { reason: string; message: string };
}

/** One run of a container: a restart gives it a new ID and a higher restart count. */
export interface ContainerRun {
  id: string;
  restarts: number;
  /** Its state is `running` (not waiting to start again, nor just terminated). */
  running: boolean;
  /** Its state is `terminated`, with this exit code; undefined while it runs or waits. */
  exitCode: number | undefined;
  /** Why it waits or ended, in the kubelet's words (`ErrImageNeverPull`, `CrashLoopBackOff`, `Completed`); '' while it runs or when not told. */
  reason: string;
  message: string;
}

/** Explicit names, as on Docker; they win over the Kubernetes recommended labels. */
export const ENTRY_LABELS = { app: 'entry.app', proc: 'entry.proc', instance: 'entry.instance' } as const;
export const KUBE_LABELS = { app: 'app.kubernetes.io/name', proc: 'app.kubernetes.io/component' } as const;
/** The StatefulSet ordinal as a label (Kubernetes 1.28 and later). */
export const POD_INDEX_LABEL = 'apps.kubernetes.io/pod-index';
export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

/** A pod object from a list or a watch event, as much of it as Entry needs. */
export function podRecord(o: any): PodRecord | undefined {
  const m = o?.metadata;
  if (!m?.uid || !m.name || !m.namespace) return undefined;
  const specContainers: Array<{ name?: string; image?: string }> = Array.isArray(o.spec?.containers) ? o.spec.containers : [];
  const containers = specContainers.map((c) => c.name ?? '').filter(Boolean);
  const images: Record<string, string> = {};
  for (const c of specContainers) if (c.name) images[c.name] = c.image ?? '';
  const owners: Array<{ kind?: string; controller?: boolean }> = Array.isArray(m.ownerReferences) ? m.ownerReferences : [];
  return {
    uid: m.uid,
    namespace: m.namespace,
    name: m.name,
    labels: m.labels ?? {},
    annotations: m.annotations ?? {},
    phase: o.status?.phase ?? 'Unknown',
    terminating: Boolean(m.deletionTimestamp),
    owner: (owners.find((r) => r.controller) ?? owners[0])?.kind ?? '',
    restartPolicy: typeof o.spec?.restartPolicy === 'string' ? o.spec.restartPolicy : 'Always',
    containers,
    images,
    created: m.creationTimestamp ?? '',
    resourceVersion: m.resourceVersion ?? '',
    runs: containerRuns(o.status),
    ...unscheduled(o.status),
  };
}

/**
 * The kubelet's and the scheduler's words with control characters made blanks: they reach a
 * user's terminal in a refusal and in `enter ls`, and an image pull's message carries what a
 * registry answered.
 */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');
}

/** The scheduler's reason for a pod no node runs yet (`Unschedulable`: no node fits it). */
function unscheduled(status: any): Pick<PodRecord, 'unscheduled'> {
  const c = Array.isArray(status?.conditions) ? status.conditions.find((x: any) => x?.type === 'PodScheduled') : undefined;
  if (c?.status !== 'False') return {};
  return { unscheduled: { reason: typeof c.reason === 'string' ? printable(c.reason) : '', message: typeof c.message === 'string' ? printable(c.message) : '' } };
}

/** The runs in a pod status's containerStatuses, by container name. */
export function containerRuns(status: any): Record<string, ContainerRun> {
  const runs: Record<string, ContainerRun> = {};
  for (const c of Array.isArray(status?.containerStatuses) ? status.containerStatuses : []) {
    if (typeof c?.name !== 'string') continue;
    const exitCode = c.state?.terminated?.exitCode;
    const down = c.state?.running ? undefined : (c.state?.waiting ?? c.state?.terminated);
    runs[c.name] = {
      id: typeof c.containerID === 'string' ? c.containerID : '',
      restarts: Number.isInteger(c.restartCount) ? c.restartCount : 0,
      running: Boolean(c.state?.running),
      exitCode: c.state?.terminated ? (Number.isInteger(exitCode) ? exitCode : -1) : undefined,
      reason: typeof down?.reason === 'string' ? printable(down.reason) : '',
      message: typeof down?.message === 'string' ? printable(down.message) : '',
    };
  }
  return runs;
}

/**
 * The pod's state in Entry's words: only `running` is enterable; the others are what
 * `decide` tells the user (`… is pending (web-0)`, `… is terminating (web-0)`).
 */
export function podState(p: PodRecord): string {
  if (p.terminating) return 'terminating';
  switch (p.phase) {
    case 'Running':
      return 'running';
    case 'Pending':
      return 'pending';
    case 'Succeeded':
      return 'succeeded';
    case 'Failed':
      return 'failed';
    default:
      return 'unknown';
  }
}

/**
 * The state `enter ls` shows: the pod's, but for a Running pod whose default container is down
 * Docker's words for such a container: `restarting` when it will start again (crash-looping, or
 * waiting to), `exited` when its restart policy leaves it ended (Never, or OnFailure after a
 * success) while another container keeps the pod Running. Entering it is refused then (with the
 * kubelet's reason), and `running` said otherwise.
 */
export function listedState(p: PodRecord): string {
  const state = podState(p);
  if (state !== 'running') return state;
  let container: string;
  try {
    container = chooseContainer(p, '');
  } catch {
    return state;
  }
  const run = p.runs[container];
  if (!run || run.running) return state;
  return restarts(p.restartPolicy, run) ? 'restarting' : 'exited';
}

/** Longest kubelet message told with a refusal: an image pull's can carry a registry's whole answer. */
const DOWN_MESSAGE_MAX_CHARS = 300;

/**
 * The container that keeps a pod from running, and the kubelet's reason: the default container
 * when it is down with a reason, else the first that waits with one (a sidecar whose image
 * cannot be pulled holds the whole pod Pending). Undefined when none says why.
 */
export function downContainer(p: PodRecord): { container: string; run: ContainerRun } | undefined {
  let chosen = '';
  try {
    chosen = chooseContainer(p, '');
  } catch {
    // No containers: nothing to say.
  }
  const own = p.runs[chosen];
  if (own && !own.running && own.reason) return { container: chosen, run: own };
  const other = p.containers.find((c) => p.runs[c] && !p.runs[c]!.running && p.runs[c]!.exitCode === undefined && p.runs[c]!.reason);
  return other ? { container: other, run: p.runs[other]! } : undefined;
}

/**
 * Why a pod that is not running does not (`container main is waiting: ErrImageNeverPull: …`,
 * `not scheduled: Unschedulable: 0/1 nodes are available: …`), for a refusal; '' when neither
 * the kubelet nor the scheduler has said.
 */
export function downReason(p: PodRecord): string {
  const down = downContainer(p);
  if (down) return runReason(down.container, down.run);
  const u = p.unscheduled;
  if (!u || (!u.reason && !u.message)) return '';
  return `not scheduled${u.reason ? `: ${u.reason}` : ''}${u.message ? `: ${cutText(u.message, DOWN_MESSAGE_MAX_CHARS)}` : ''}`;
}

/** Why a pod that is not running does not, in one word for a listing (`ErrImageNeverPull`, `Unschedulable`); '' when not told. */
export function downWord(p: PodRecord): string {
  return downContainer(p)?.run.reason || p.unscheduled?.reason || '';
}

/** Why the pod's `container` does not run, as the kubelet last said; '' when it runs or has not said. */
export function containerDownReason(p: PodRecord, container: string): string {
  const run = p.runs[container];
  return run && !run.running && run.reason ? runReason(container, run) : '';
}

function runReason(container: string, run: ContainerRun): string {
  const message = cutText(run.message, DOWN_MESSAGE_MAX_CHARS);
  if (run.exitCode === undefined) return `container ${container} is waiting: ${run.reason}${message ? `: ${message}` : ''}`;
  return `container ${container} has ended: ${run.reason} (exit code ${run.exitCode})${message ? `: ${message}` : ''}`;
}

/** Whether the kubelet starts a container that is down again, by the pod's restart policy. */
function restarts(policy: string, run: ContainerRun): boolean {
  // Waiting in a Running pod: it ran before, and waits to start again (CrashLoopBackOff).
  if (run.exitCode === undefined) return true;
  if (policy === 'Never') return false;
  if (policy === 'OnFailure') return run.exitCode !== 0;
  return true;
}

/** A StatefulSet's stable ordinal: the pod-index label, else the pod name's numeric suffix. */
export function podOrdinal(p: PodRecord): string | undefined {
  const label = p.labels[POD_INDEX_LABEL];
  if (label !== undefined && /^\d+$/.test(label)) return String(Number(label));
  if (p.owner !== 'StatefulSet') return undefined;
  const m = /-(\d+)$/.exec(p.name);
  return m ? String(Number(m[1])) : undefined;
}

/**
 * app / proc / instance of a pod, or undefined when it has no app or proc name. Each `entry.*`
 * label wins over its Kubernetes counterpart; the instance is the StatefulSet ordinal, or for a
 * pod without one (a Deployment's) the pod's own name.
 */
export function podTarget(p: PodRecord): Target | undefined {
  const app = p.labels[ENTRY_LABELS.app] ?? p.labels[KUBE_LABELS.app];
  const proc = p.labels[ENTRY_LABELS.proc] ?? p.labels[KUBE_LABELS.proc];
  if (!app || !proc) return undefined;
  const explicit = p.labels[ENTRY_LABELS.instance];
  const instance = explicit !== undefined && explicit !== '' ? (/^\d+$/.test(explicit) ? String(Number(explicit)) : explicit) : (podOrdinal(p) ?? p.name);
  return { app, proc, instance };
}

/** Whether the pod is what `target` names: by its instance, or (any pod) by its own name. */
export function podMatches(p: PodRecord, target: Target): boolean {
  const t = podTarget(p);
  if (!t || t.app !== target.app || t.proc !== target.proc) return false;
  return t.instance === target.instance || p.name === target.instance;
}

/**
 * The container to enter: the one asked for, else the pod's default-container annotation, else
 * its first container.
 */
export function chooseContainer(p: PodRecord, wanted: string): string {
  if (wanted) {
    if (p.containers.includes(wanted)) return wanted;
    throw new EntryError('ENTRY_NOT_FOUND', `pod ${p.namespace}/${p.name} has no container ${JSON.stringify(wanted)} (it has: ${p.containers.join(', ')})`);
  }
  const annotated = p.annotations[DEFAULT_CONTAINER_ANNOTATION];
  if (annotated && p.containers.includes(annotated)) return annotated;
  const first = p.containers[0];
  if (!first) throw new EntryError('ENTRY_NOT_FOUND', `pod ${p.namespace}/${p.name} has no containers`);
  return first;
}

import type { EntryError } from '../errors.js';
import type { ProcessSide } from './process-side.js';

/**
 * The seam between Entry and the engines processes run on (Docker hosts, Kubernetes pods).
 * Everything engine-specific lives behind it: finding targets, starting processes, a target's
 * own output for /attach, and ending a session's leftover processes. The relay, auth, store,
 * audit, recording and transport see only these types.
 */

/** What a user names: app / proc / instance. */
export interface Target {
  app: string;
  proc: string;
  instance: string;
}

/** What to start in a target. The engine's own terms stay behind the backend. */
export interface ExecSpec {
  /** The session the process belongs to: its leftovers are found and ended by this id. */
  sessionId: string;
  cmd: string[];
  tty: boolean;
  /** KEY=VALUE entries. */
  env: string[];
  /** Run as this user ('' = the image's default). */
  user: string;
  /** Start in this directory ('' = the image's default). */
  workdir: string;
  /** Initial terminal size, applied as soon as the process runs. */
  size: { cols: number; rows: number } | undefined;
  /** SIGHUP → SIGKILL grace when the session ends without the process. */
  terminateGraceMs: number;
  /** The engine or cluster must have started the process within this, else the open fails. */
  openTimeoutMs: number;
  /** A container inside a multi-container target (a pod); '' = the target's default. */
  container: string;
}

/** Display fields of a resolved target: all that the rest of the broker may read of it. */
export interface TargetPlace {
  /** The backend kind: `docker`, `kubernetes`. */
  backend: string;
  /** The Docker host or Kubernetes cluster, by its configured name. */
  host: string;
  /** Kubernetes namespace; '' for Docker. */
  namespace: string;
  /** Container or pod name. */
  name: string;
  /** Container id or pod uid. */
  id: string;
  image: string;
  state: string;
}

/**
 * Where a session's processes run, as the session ledger keeps it: enough for any broker with
 * the same hosts and clusters to end them later, without the session.
 */
export interface LeftoverPlace {
  backend: string;
  host: string;
  namespace: string;
  name: string;
  /** Container id or pod uid: a target of the same name started since is another one. */
  id: string;
  /** A container inside a multi-container target (a pod); '' = the target's default. */
  container: string;
}

/** One running target, ready to enter. */
export interface ResolvedTarget extends TargetPlace {
  /**
   * The app the target's own labels name, when the backend knows it: admission checks the
   * policy against it again after resolving, so no name can reach a target of another app.
   */
  readonly app?: string;
  /**
   * Why it is not running, in a sentence, when the engine says (a pod's `container main is
   * waiting: ErrImageNeverPull: …`): told with the refusal to enter it. Listings carry the
   * engine's one word instead (`TargetInfo.reason`).
   */
  readonly downReason?: string;
  /** Starts a process in it. Rejects with an EntryError (exec failed, target gone, engine down). */
  open(spec: ExecSpec): Promise<ProcessSide>;
  /**
   * The target's own stdout/stderr for /attach (the last lines, then following), as a read-only
   * process side: input is ignored, and it ends when the target stops.
   */
  attach(): Promise<ProcessSide>;
}

/** A target as listings show it (the console, `enter ls`). */
export interface TargetInfo extends Target {
  backend: string;
  host: string;
  namespace: string;
  name: string;
  state: string;
  image: string;
  created: string;
  /** Containers of a multi-container pod (Kubernetes); absent for Docker. */
  containers?: string[];
  /**
   * Why a target that is not running is not, in the engine's own word, when it gives one: the
   * kubelet's reason for a pod's container (`ErrImageNeverPull`, `CrashLoopBackOff`, `Completed`).
   * Absent for a running target, and for Docker.
   */
  reason?: string;
}

/**
 * What one host or cluster of a backend says about a target: the candidates it holds (running or
 * not), or why it could not be asked.
 */
export type HostAnswer =
  | { host: string; ok: true; found: ResolvedTarget[] }
  /** `label` names the host for people (`docker host b`, `cluster prod`), `unreachable` the code that says it is down; `error`, when set, is told as it is. */
  | { host: string; ok: false; label: string; why: string; error?: EntryError; unreachable: 'ENTRY_DOCKER_UNAVAILABLE' | 'ENTRY_CLUSTER_UNAVAILABLE' };

/** One engine kind. Adding one is a folder implementing this, and one line in `backends.ts`. */
export interface Backend {
  /** `docker`, `kubernetes`. */
  readonly kind: string;
  /** Starts the target index (event streams, watches). */
  start(): Promise<void>;
  stop(): void;
  /** Whether each host or cluster is reachable now, by name. */
  status(): Record<string, boolean>;
  /** Per host or cluster, for the metrics: reachable now, and how many targets it indexes. */
  gauges(): Array<{ name: string; up: boolean; containers: number }>;
  /** Every candidate for the target, per host or cluster. */
  find(target: Target): Promise<HostAnswer[]>;
  /** Every enterable target on every reachable host or cluster; rejects only when none answers. */
  list(): Promise<TargetInfo[]>;
  /**
   * Ends the processes `session` left in `place` (SIGHUP, then SIGKILL after `graceMs`), for a
   * session no broker holds any more. False when the target is gone (its processes went with
   * it); rejects when the host or cluster cannot be asked.
   */
  endLeftovers(place: LeftoverPlace, session: string, graceMs: number): Promise<boolean>;
}

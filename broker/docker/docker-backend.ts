import type Docker from 'dockerode';
import type { Backend, ExecSpec, HostAnswer, LeftoverPlace, ResolvedTarget, Target, TargetInfo } from '../backend/backend.js';
import { EntryError } from '../errors.js';
import type { BrokerConfig } from '../config/config.js';
import type { Logger } from '../log.js';
import { type DockerCallObserver, instrumentDocker } from './call-timing.js';
import { dockerClientOptions } from './client-options.js';
import type { ProcessSide } from '../session/types.js';
import { ContainerIndex, type IndexedContainer, type IndexTiming, listLabelled, targetOf } from './container-index.js';
import { answerInTime, disconnectDocker, dockerFailure } from './engine.js';
import { DockerExecProcess } from './exec-process.js';
import { connectHosts, type DockerHost } from './hosts.js';
import { openContainerLogs } from './logs-process.js';
import type { ReapMode } from './process-reaper.js';

/** A Docker client, for callers that must not import dockerode themselves. */
export type DockerClient = Docker;

/** A container on one host, as the rest of the broker sees it. */
class DockerTarget implements ResolvedTarget {
  readonly backend = 'docker';
  readonly namespace = '';
  readonly host: string;
  readonly id: string;
  readonly name: string;
  readonly image: string;
  readonly state: string;
  readonly app: string;

  constructor(
    private readonly dockerHost: DockerHost,
    c: IndexedContainer,
  ) {
    this.host = dockerHost.name;
    this.id = c.id;
    this.name = c.name;
    this.image = c.image;
    this.state = c.state;
    this.app = targetOf(c.labels)?.app ?? '';
  }

  open(spec: ExecSpec): Promise<ProcessSide> {
    // A Docker container has no containers inside it to choose from: running in it anyway would
    // not be what the user asked for, so the name is refused rather than ignored.
    if (spec.container) {
      return Promise.reject(new EntryError('ENTRY_BAD_REQUEST', `container ${JSON.stringify(spec.container)} given, but -c (container) picks a container of a Kubernetes pod and this target is a Docker container: leave it out`));
    }
    return DockerExecProcess.open(this.dockerHost.docker, this.dockerHost.reaper, { ...spec, containerId: this.id });
  }

  attach(): Promise<ProcessSide> {
    return openContainerLogs(this.dockerHost.docker, this.id);
  }
}

const unreachable = (host: DockerHost, why: string): HostAnswer => ({ host: host.name, ok: false, label: `docker host ${host.name}`, why, unreachable: 'ENTRY_DOCKER_UNAVAILABLE' });
const listingFailed = (host: DockerHost, error: unknown): HostAnswer => unreachable(host, dockerFailure(error, 'listing containers').message);
const found = (host: DockerHost, list: IndexedContainer[]): HostAnswer => ({ host: host.name, ok: true, found: list.map((c) => new DockerTarget(host, c)) });

/**
 * Docker hosts: containers named by labels (Entry's, or Docker Compose's), kept current from
 * each engine's event stream; processes are Docker execs.
 */
export class DockerBackend implements Backend {
  readonly kind = 'docker';
  private index: ContainerIndex | undefined;

  constructor(
    readonly hosts: readonly DockerHost[],
    private readonly log: Logger,
    private readonly options: { indexed?: boolean; timing?: Partial<IndexTiming>; onChange?: (host: string, up: boolean) => void } = {},
  ) {}

  async start(): Promise<void> {
    if (this.options.indexed === false) return;
    this.index = new ContainerIndex(this.hosts, this.log, this.options.timing, this.options.onChange);
    await this.index.start();
  }

  stop(): void {
    this.index?.stop();
    for (const h of this.hosts) disconnectDocker(h.docker);
  }

  status(): Record<string, boolean> {
    return this.index ? this.index.status() : Object.fromEntries(this.hosts.map((h) => [h.name, true]));
  }

  gauges(): Array<{ name: string; up: boolean; containers: number }> {
    return this.index?.hosts.map((h) => ({ name: h.name, up: h.up, containers: h.size })) ?? [];
  }

  /**
   * From each host's index when it has one and it is up; by listing when it has none. A miss
   * (nothing running) is checked once against the engines themselves, since a container started
   * a moment ago may not have reached the index yet. A host that is down answers at once.
   */
  async find(target: Target): Promise<HostAnswer[]> {
    let answers = await Promise.all(this.hosts.map((h) => this.candidates(h, target)));
    const anyRunning = answers.some((a) => a.ok && a.found.some((c) => c.state === 'running'));
    if (!anyRunning && this.hosts.some((h, i) => h.index && answers[i]!.ok)) {
      answers = await Promise.all(answers.map((a, i) => (a.ok && this.hosts[i]!.index ? this.confirm(this.hosts[i]!, target) : a)));
    }
    return answers;
  }

  private async candidates(host: DockerHost, target: Target): Promise<HostAnswer> {
    const index = host.index;
    if (index) {
      if (!index.up) return unreachable(host, index.state === 'connecting' ? 'connecting' : index.downReason);
      return found(host, index.lookup(target));
    }
    return listLabelled(host.docker, undefined, target).then(
      (list) => found(host, list),
      (err: unknown) => listingFailed(host, err),
    );
  }

  /** A direct listing on an indexed host; what it finds goes into the index too. */
  private async confirm(host: DockerHost, target: Target): Promise<HostAnswer> {
    try {
      const listing = () => listLabelled(host.docker, undefined, target);
      return found(host, await (host.index ? host.index.confirm(listing) : listing()));
    } catch (error) {
      return listingFailed(host, error);
    }
  }

  /** A container that is gone or stopped took the session's processes with it; else they are found by their mark. */
  async endLeftovers(place: LeftoverPlace, session: string, graceMs: number): Promise<boolean> {
    const host = this.hosts.find((h) => h.name === place.host);
    if (!host) throw new EntryError('ENTRY_NOT_FOUND', `no docker host named ${JSON.stringify(place.host)} is configured`);
    let running: boolean;
    try {
      running = (await host.docker.getContainer(place.id).inspect(answerInTime())).State?.Running === true;
    } catch (err) {
      const failure = dockerFailure(err, 'inspecting a container');
      if (failure.code === 'ENTRY_CONTAINER_GONE') return false;
      throw failure;
    }
    if (!running) return false;
    await host.reaper.terminate(place.id, session, 0, graceMs);
    return true;
  }

  async list(): Promise<TargetInfo[]> {
    const results = await Promise.allSettled(
      this.hosts.map((h) => {
        if (!h.index) return listLabelled(h.docker);
        return h.index.up ? Promise.resolve(h.index.all()) : Promise.reject(Object.assign(new Error(h.index.downReason), { code: 'ECONNREFUSED' }));
      }),
    );
    if (results.every((r) => r.status === 'rejected')) throw dockerFailure((results[0] as PromiseRejectedResult).reason, 'listing containers');
    const out: TargetInfo[] = [];
    results.forEach((r, i) => {
      if (r.status === 'rejected') return;
      for (const c of r.value) {
        // The same one name resolution uses: Entry's labels win over Compose's.
        const t = targetOf(c.labels);
        if (!t) continue;
        out.push({
          ...t,
          backend: 'docker',
          host: this.hosts[i]!.name,
          namespace: '',
          state: c.state,
          image: c.image,
          name: c.name,
          created: new Date(c.created * 1000).toISOString(),
        });
      }
    });
    return out;
  }
}

export interface DockerWiring {
  config: BrokerConfig['docker'];
  log: Logger;
  /** Overrides the configured reap mode (tests). */
  reapMode?: ReapMode;
  /** One client for every host (tests). */
  docker?: DockerClient;
  /** Told of every Engine API call (metrics). */
  onCall?: DockerCallObserver;
}

/** The Docker backend as configured: every --docker-host, with its client and reaper. */
export function createDockerBackend(w: DockerWiring): DockerBackend {
  const hosts = connectHosts(w.config.hosts, w.reapMode ?? w.config.reapMode, w.docker, dockerClientOptions(w.config.client, w.config.hosts), w.log);
  const observe = w.onCall;
  if (observe) for (const h of hosts) instrumentDocker(h.docker, h.name, observe);
  return new DockerBackend(hosts, w.log);
}

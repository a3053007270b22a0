import type Docker from 'dockerode';
import { EntryError } from '../errors.js';
import { dockerFailure } from './engine.js';
import type { DockerHost } from './hosts.js';

export interface Target {
  app: string;
  proc: string;
  instance: string;
}

export interface ResolvedContainer {
  id: string;
  name: string;
  image: string;
  state: string;
  /** The Docker host it runs on, and the client for it. */
  host: DockerHost;
}

/** A container as the console lists it. */
export interface TargetInfo extends Target {
  state: string;
  image: string;
  name: string;
  created: string;
  host: string;
}

/** Label sets that name a target. Entry's own labels first, then Docker Compose's. */
export const LABEL_SCHEMES = [
  { app: 'entry.app', proc: 'entry.proc', instance: 'entry.instance' },
  { app: 'com.docker.compose.project', proc: 'com.docker.compose.service', instance: 'com.docker.compose.container-number' },
] as const;

type Listed = Docker.ContainerInfo;

/** The labelled containers of one host matching `target` (all of them when no target). */
async function listOnHost(host: DockerHost, target?: Target): Promise<Listed[]> {
  const lists = await Promise.all(
    LABEL_SCHEMES.map((scheme) =>
      host.docker.listContainers({
        all: true,
        filters: { label: target ? [`${scheme.app}=${target.app}`, `${scheme.proc}=${target.proc}`, `${scheme.instance}=${target.instance}`] : [scheme.app] },
      }),
    ),
  );
  const seen = new Set<string>();
  return lists.flat().filter((c) => !seen.has(c.Id) && seen.add(c.Id));
}

/** Finds the one running container that app/proc/instance names, by labels, on every host. */
export class ContainerResolver {
  constructor(private readonly hosts: readonly DockerHost[]) {}

  async resolve(target: Target): Promise<ResolvedContainer> {
    const name = `${target.app}/${target.proc}/${target.instance}`;
    const results = await Promise.allSettled(this.hosts.map((h) => listOnHost(h, target)));
    const all: ResolvedContainer[] = [];
    const unreachable: string[] = [];
    results.forEach((r, i) => {
      const host = this.hosts[i]!;
      if (r.status === 'rejected') {
        unreachable.push(host.name);
        return;
      }
      for (const c of r.value) all.push({ id: c.Id, name: (c.Names[0] ?? c.Id).replace(/^\//, ''), image: c.Image, state: c.State, host });
    });
    const running = all.filter((c) => c.state === 'running');
    if (running.length > 1) {
      const where = running.map((c) => (this.hosts.length > 1 ? `${c.name} on ${c.host.name}` : c.name));
      throw new EntryError('ENTRY_AMBIGUOUS', `${name} matches ${where.join(', ')}`);
    }
    if (running.length === 1) return running[0]!;
    if (unreachable.length > 0) {
      // It may well be on the host we cannot ask: say so instead of "not found".
      const err = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!.reason as unknown;
      const failure = dockerFailure(err, 'listing containers');
      throw new EntryError('ENTRY_DOCKER_UNAVAILABLE', `docker host ${unreachable.join(', ')} unreachable (${failure.message})`);
    }
    if (all.length === 0) throw new EntryError('ENTRY_NOT_FOUND', name);
    throw new EntryError('ENTRY_NOT_RUNNING', `${name} is ${all[0]!.state} (${all[0]!.name})`);
  }
}

/** Every labelled container on every reachable host, as targets (Entry labels win over Compose's). */
export async function listTargets(hosts: readonly DockerHost[]): Promise<TargetInfo[]> {
  const results = await Promise.allSettled(hosts.map((h) => listOnHost(h)));
  if (results.every((r) => r.status === 'rejected')) throw dockerFailure((results[0] as PromiseRejectedResult).reason, 'listing containers');
  const out: TargetInfo[] = [];
  results.forEach((r, i) => {
    if (r.status === 'rejected') return;
    for (const c of r.value) {
      const scheme = LABEL_SCHEMES.find((s) => c.Labels[s.app] && c.Labels[s.proc] && c.Labels[s.instance]);
      if (!scheme) continue;
      out.push({
        app: c.Labels[scheme.app]!,
        proc: c.Labels[scheme.proc]!,
        instance: c.Labels[scheme.instance]!,
        state: c.State,
        image: c.Image,
        name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
        created: new Date(c.Created * 1000).toISOString(),
        host: hosts[i]!.name,
      });
    }
  });
  return out.sort((a, b) => a.app.localeCompare(b.app) || a.proc.localeCompare(b.proc) || Number(a.instance) - Number(b.instance) || a.host.localeCompare(b.host));
}

const NAME_PART = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Validates target names before they go anywhere near a label filter. */
export function validateTarget(app: unknown, proc: unknown, instance: unknown): Target {
  for (const [label, value] of [['app', app], ['proc', proc], ['instance', instance]] as const) {
    if (typeof value !== 'string' || !NAME_PART.test(value)) {
      throw new EntryError('ENTRY_BAD_REQUEST', `${label} name missing or invalid: ${JSON.stringify(value ?? '')}`);
    }
  }
  if (!/^\d{1,6}$/.test(instance as string)) {
    throw new EntryError('ENTRY_BAD_REQUEST', `instance must be a number, got ${JSON.stringify(instance)}`);
  }
  return { app: app as string, proc: proc as string, instance: String(Number(instance)) };
}

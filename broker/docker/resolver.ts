import { EntryError } from '../errors.js';
import { type IndexedContainer, LABEL_SCHEMES, listLabelled } from './container-index.js';
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

export { LABEL_SCHEMES } from './container-index.js';

/** One host's candidates for a target, or why the host could not be asked. */
type HostAnswer = { ok: true; found: IndexedContainer[] } | { ok: false; why: string };

const listingFailed = (error: unknown): HostAnswer => ({ ok: false, why: dockerFailure(error, 'listing containers').message });

/** From the host's index when it has one and it is up; by listing when it has none. */
async function candidates(host: DockerHost, target: Target): Promise<HostAnswer> {
  const index = host.index;
  if (index) {
    if (!index.up) return { ok: false, why: index.state === 'connecting' ? 'connecting' : index.downReason };
    return { ok: true, found: index.lookup(target) };
  }
  return listLabelled(host.docker, undefined, target).then(
    (found) => ({ ok: true as const, found }),
    listingFailed,
  );
}

/**
 * Finds the one running container that app/proc/instance names, by labels, on every host.
 * Hosts with an index answer from memory; a miss (nothing running) is checked once against
 * the engines themselves, since a container started a moment ago may not have reached the
 * index yet. A host that is down answers at once as unreachable.
 */
export class ContainerResolver {
  constructor(private readonly hosts: readonly DockerHost[]) {}

  async resolve(target: Target): Promise<ResolvedContainer> {
    let answers = await Promise.all(this.hosts.map((h) => candidates(h, target)));
    if (!answers.some((a) => a.ok && a.found.some((c) => c.state === 'running')) && this.hosts.some((h, i) => h.index && answers[i]!.ok)) {
      answers = await Promise.all(answers.map((a, i) => (a.ok && this.hosts[i]!.index ? this.confirm(this.hosts[i]!, target) : a)));
    }
    return this.decide(target, answers);
  }

  /** A direct listing on an indexed host; what it finds goes into the index too. */
  private async confirm(host: DockerHost, target: Target): Promise<HostAnswer> {
    try {
      const found = await listLabelled(host.docker, undefined, target);
      for (const c of found) host.index?.upsert(c);
      return { ok: true, found };
    } catch (error) {
      return listingFailed(error);
    }
  }

  private decide(target: Target, answers: HostAnswer[]): ResolvedContainer {
    const name = `${target.app}/${target.proc}/${target.instance}`;
    const all: ResolvedContainer[] = [];
    const unreachable: Array<{ host: string; why: string }> = [];
    answers.forEach((a, i) => {
      const host = this.hosts[i]!;
      if (!a.ok) unreachable.push({ host: host.name, why: a.why });
      else for (const c of a.found) all.push({ id: c.id, name: c.name, image: c.image, state: c.state, host });
    });
    const running = all.filter((c) => c.state === 'running');
    if (running.length > 1) {
      const where = running.map((c) => (this.hosts.length > 1 ? `${c.name} on ${c.host.name}` : c.name));
      throw new EntryError('ENTRY_AMBIGUOUS', `${name} matches ${where.join(', ')}`);
    }
    if (running.length === 1) return running[0]!;
    if (unreachable.length > 0) {
      // It may well be on the host we cannot ask: say so instead of "not found".
      throw new EntryError('ENTRY_DOCKER_UNAVAILABLE', `docker host ${unreachable.map((u) => u.host).join(', ')} unreachable (${unreachable[0]!.why})`);
    }
    if (all.length === 0) throw new EntryError('ENTRY_NOT_FOUND', name);
    throw new EntryError('ENTRY_NOT_RUNNING', `${name} is ${all[0]!.state} (${all[0]!.name})`);
  }
}

/** Every labelled container on every reachable host, as targets (Entry labels win over Compose's). */
export async function listTargets(hosts: readonly DockerHost[]): Promise<TargetInfo[]> {
  const results = await Promise.allSettled(
    hosts.map((h) => {
      if (!h.index) return listLabelled(h.docker);
      return h.index.up ? Promise.resolve(h.index.all()) : Promise.reject(Object.assign(new Error(h.index.downReason), { code: 'ECONNREFUSED' }));
    }),
  );
  if (results.every((r) => r.status === 'rejected')) throw dockerFailure((results[0] as PromiseRejectedResult).reason, 'listing containers');
  const out: TargetInfo[] = [];
  results.forEach((r, i) => {
    if (r.status === 'rejected') return;
    for (const c of r.value) {
      const scheme = LABEL_SCHEMES.find((s) => c.labels[s.app] && c.labels[s.proc] && c.labels[s.instance]);
      if (!scheme) continue;
      out.push({
        app: c.labels[scheme.app]!,
        proc: c.labels[scheme.proc]!,
        instance: c.labels[scheme.instance]!,
        state: c.state,
        image: c.image,
        name: c.name,
        created: new Date(c.created * 1000).toISOString(),
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

import type Docker from 'dockerode';
import { EntryError } from '../errors.js';
import { dockerFailure } from './engine.js';

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
}

/** Label sets that name a target. Entry's own labels first, then Docker Compose's. */
export const LABEL_SCHEMES = [
  { app: 'entry.app', proc: 'entry.proc', instance: 'entry.instance' },
  { app: 'com.docker.compose.project', proc: 'com.docker.compose.service', instance: 'com.docker.compose.container-number' },
] as const;

/** Finds the one running container that app/proc/instance names, by labels. */
export class ContainerResolver {
  constructor(private readonly docker: Docker) {}

  async resolve(target: Target): Promise<ResolvedContainer> {
    const found = new Map<string, ResolvedContainer>();
    try {
      const lists = await Promise.all(
        LABEL_SCHEMES.map((scheme) =>
          this.docker.listContainers({
            all: true,
            filters: {
              label: [`${scheme.app}=${target.app}`, `${scheme.proc}=${target.proc}`, `${scheme.instance}=${target.instance}`],
            },
          }),
        ),
      );
      for (const c of lists.flat()) {
        found.set(c.Id, { id: c.Id, name: (c.Names[0] ?? c.Id).replace(/^\//, ''), image: c.Image, state: c.State });
      }
    } catch (err) {
      throw dockerFailure(err, 'listing containers');
    }
    const name = `${target.app}/${target.proc}/${target.instance}`;
    const all = [...found.values()];
    if (all.length === 0) throw new EntryError('ENTRY_NOT_FOUND', name);
    const running = all.filter((c) => c.state === 'running');
    if (running.length === 0) {
      throw new EntryError('ENTRY_NOT_RUNNING', `${name} is ${all[0]!.state} (${all[0]!.name})`);
    }
    if (running.length > 1) {
      throw new EntryError('ENTRY_AMBIGUOUS', `${name} matches ${running.map((c) => c.name).join(', ')}`);
    }
    return running[0]!;
  }
}

/** A container as the console lists it. */
export interface TargetInfo extends Target {
  state: string;
  image: string;
  name: string;
  created: string;
}

/** Every labelled container on the engine, as targets (Entry labels win over Compose's). */
export async function listTargets(docker: Docker): Promise<TargetInfo[]> {
  let lists;
  try {
    lists = await Promise.all(LABEL_SCHEMES.map((scheme) => docker.listContainers({ all: true, filters: { label: [scheme.app] } })));
  } catch (err) {
    throw dockerFailure(err, 'listing containers');
  }
  const seen = new Set<string>();
  const out: TargetInfo[] = [];
  lists.forEach((containers, i) => {
    const scheme = LABEL_SCHEMES[i]!;
    for (const c of containers) {
      if (seen.has(c.Id)) continue;
      const app = c.Labels[scheme.app];
      const proc = c.Labels[scheme.proc];
      const instance = c.Labels[scheme.instance];
      if (!app || !proc || !instance) continue;
      seen.add(c.Id);
      out.push({ app, proc, instance, state: c.State, image: c.Image, name: (c.Names[0] ?? c.Id).replace(/^\//, ''), created: new Date(c.Created * 1000).toISOString() });
    }
  });
  return out.sort((a, b) => a.app.localeCompare(b.app) || a.proc.localeCompare(b.proc) || Number(a.instance) - Number(b.instance));
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

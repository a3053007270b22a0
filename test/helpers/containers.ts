import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';

/** The engine the tests use: DOCKER_SOCKET, else the default socket. */
export const ENGINE_SOCKET = process.env['DOCKER_SOCKET'] ?? '/var/run/docker.sock';
export const docker = new Docker({ socketPath: ENGINE_SOCKET });

/** The run of the test command (deploy/dev/test.sh) this is part of: it removes the run's containers if it is stopped. */
const TEST_RUN = process.env['ENTRY_TEST_RUN'];

/** A unique app name per suite, so suites never see each other's containers. */
export function uniqueApp(prefix = 't'): string {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

export interface ContainerSpec {
  labels: Record<string, string>;
  image?: string;
  /** Leave the container created but stopped. */
  stopped?: boolean;
  /** Restart policy "always": the engine starts it again when the engine itself comes back. */
  restart?: boolean;
}

/**
 * Starts labelled containers for a suite (or a benchmark run) and removes them all afterwards.
 * Each also carries the label `mark`, so leftovers of a killed run can be found.
 */
export class TestContainers {
  private readonly ids: string[] = [];

  constructor(
    readonly engine: Docker = docker,
    private readonly mark = 'entry.test',
  ) {}

  async start(spec: ContainerSpec): Promise<string> {
    const c = await this.engine.createContainer({
      Image: spec.image ?? 'entry-demo:latest',
      Labels: { [this.mark]: '1', ...(TEST_RUN ? { [`${this.mark}.run`]: TEST_RUN } : {}), ...spec.labels },
      // No network: the tests need none, and it keeps them independent of the engine's bridge.
      HostConfig: { AutoRemove: false, NetworkMode: 'none', ...(spec.restart ? { RestartPolicy: { Name: 'always' } } : {}) },
    });
    this.ids.push(c.id);
    if (!spec.stopped) await c.start();
    return c.id;
  }

  /** An Entry-labelled container for app/proc/instance. */
  entry(app: string, proc: string, instance: number | string, image?: string): Promise<string> {
    return this.start({ labels: { 'entry.app': app, 'entry.proc': proc, 'entry.instance': String(instance) }, ...(image ? { image } : {}) });
  }

  /** Restarts every container: what still runs in them ends. */
  async restartAll(): Promise<void> {
    await Promise.all(this.ids.map((id) => this.engine.getContainer(id).restart({ t: 0 })));
  }

  async removeAll(): Promise<void> {
    await Promise.all(this.ids.splice(0).map((id) => this.engine.getContainer(id).remove({ force: true }).catch(() => undefined)));
  }
}

/**
 * Creates `path` in the container straight through the engine, without waiting for it: a
 * command that waits for the file goes on at a moment the test chooses, not after a sleep.
 */
export async function touchIn(id: string, path: string): Promise<void> {
  const exec = await docker.getContainer(id).exec({ Cmd: ['touch', path] });
  await exec.start({ Detach: true });
}

/** A shell loop that waits for `path` to exist (see touchIn). */
export const awaitFile = (path: string) => `until [ -e ${path} ]; do sleep 0.05; done`;

/** Process list of a container as `docker top` sees it (command lines). */
export async function containerProcesses(id: string): Promise<string[]> {
  const top = await docker.getContainer(id).top({ ps_args: '-eo pid,args' });
  return ((top.Processes ?? []) as string[][]).map((p: string[]) => p[p.length - 1] ?? '');
}

/** exec_create events for a container since `sinceMs` (epoch ms), straight from the engine. */
export async function execCreateCount(containerId: string, sinceMs: number): Promise<number> {
  const until = ((Date.now() + 50) / 1000).toFixed(3);
  const stream = await docker.getEvents({
    since: (sinceMs / 1000).toFixed(3) as unknown as number,
    until: until as unknown as number,
    filters: { container: [containerId], type: ['container'] },
  });
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks)
    .toString()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { Action?: string; status?: string })
    .filter((e) => (e.Action ?? e.status ?? '').startsWith('exec_create')).length;
}

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';

export const IMAGE = 'entry-demo:latest';
/** Every bench container carries this label, so leftovers from a killed run can be found. */
export const BENCH_LABEL = 'entry.bench';

export interface BenchTarget {
  id: string;
  app: string;
  proc: string;
  instance: string;
}

/** Labelled containers for one run; `removeAll` removes them, also after a failure. */
export class BenchContainers {
  readonly app = `bench${randomBytes(3).toString('hex')}`;
  private readonly ids: string[] = [];

  constructor(readonly docker: Docker) {}

  /** Builds the offline demo image when it is missing. */
  async ensureImage(): Promise<void> {
    try {
      await this.docker.getImage(IMAGE).inspect();
    } catch {
      const script = fileURLToPath(new URL('../../deploy/dev/demo-image.sh', import.meta.url));
      execFileSync('bash', [script], { stdio: 'inherit' });
    }
  }

  /** Starts one container labelled `<app>/<proc>/<instance>`. */
  async start(proc: string, instance: number): Promise<BenchTarget> {
    const c = await this.docker.createContainer({
      Image: IMAGE,
      Labels: { [BENCH_LABEL]: '1', 'entry.app': this.app, 'entry.proc': proc, 'entry.instance': String(instance) },
      // No network: none is needed, and the engine's bridge may not exist on this machine.
      HostConfig: { NetworkMode: 'none', AutoRemove: false },
    });
    this.ids.push(c.id);
    await c.start();
    return { id: c.id, app: this.app, proc, instance: String(instance) };
  }

  /** Restarts every container of the run: what still runs in them (an abandoned figure's execs) ends. */
  async restartAll(): Promise<void> {
    await Promise.all(this.ids.map((id) => this.docker.getContainer(id).restart({ t: 0 })));
  }

  async removeAll(): Promise<void> {
    await Promise.all(this.ids.splice(0).map((id) => this.docker.getContainer(id).remove({ force: true }).catch(() => undefined)));
  }
}

/** Removes containers left by bench runs that were killed before their own clean-up. */
export async function removeStaleBenchContainers(docker: Docker, olderThanSec = 3600): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [BENCH_LABEL] } });
  const stale = list.filter((c) => Date.now() / 1000 - c.Created > olderThanSec);
  await Promise.all(stale.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  return stale.length;
}

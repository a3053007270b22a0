import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Docker from 'dockerode';
import { TestContainers } from '../test/helpers/containers.js';
import { ROOT } from '../test/helpers/repo.js';

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
  private readonly set: TestContainers;

  constructor(readonly docker: Docker) {
    this.set = new TestContainers(docker, BENCH_LABEL);
  }

  /** Builds the offline demo image when it is missing. */
  async ensureImage(): Promise<void> {
    try {
      await this.docker.getImage(IMAGE).inspect();
    } catch {
      execFileSync('bash', [join(ROOT, 'deploy/dev/demo-image.sh')], { stdio: 'inherit' });
    }
  }

  /** Starts one container labelled `<app>/<proc>/<instance>`. */
  async start(proc: string, instance: number): Promise<BenchTarget> {
    const id = await this.set.entry(this.app, proc, instance, IMAGE);
    return { id, app: this.app, proc, instance: String(instance) };
  }

  /** Restarts every container of the run: what still runs in them (an abandoned figure's execs) ends. */
  restartAll(): Promise<void> {
    return this.set.restartAll();
  }

  removeAll(): Promise<void> {
    return this.set.removeAll();
  }
}

/** Removes containers left by bench runs that were killed before their own clean-up. */
export async function removeStaleBenchContainers(docker: Docker, olderThanSec = 3600): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [BENCH_LABEL] } });
  const stale = list.filter((c) => Date.now() / 1000 - c.Created > olderThanSec);
  await Promise.all(stale.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  return stale.length;
}

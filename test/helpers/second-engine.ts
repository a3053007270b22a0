import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';

/**
 * A second Docker engine of our own beside the machine's, with its own socket, data root and
 * containerd namespace, so a test can stop and restart an engine without touching the others.
 */
export class SecondEngine {
  readonly dir = mkdtempSync(join(tmpdir(), 'entry-engine-'));
  readonly socket = join(this.dir, 'docker.sock');
  readonly docker = new Docker({ socketPath: this.socket });
  private child: ChildProcess | undefined;

  get host(): string {
    return `unix://${this.socket}`;
  }

  async start(): Promise<void> {
    const name = this.dir.split('/').pop()!;
    this.child = spawn(
      'dockerd',
      [
        '--host', this.host,
        '--data-root', join(this.dir, 'data'),
        '--exec-root', join(this.dir, 'exec'),
        '--pidfile', join(this.dir, 'docker.pid'),
        '--bridge', 'none', '--iptables=false', '--ip-masq=false',
        '--containerd-namespace', name,
        '--containerd-plugins-namespace', `${name}-plugins`,
      ],
      { stdio: 'ignore', detached: false },
    );
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await this.docker.ping();
        return;
      } catch {
        if (Date.now() > deadline || this.child.exitCode !== null) throw new Error('second dockerd did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Copies an image from the machine's engine (no registry needed). */
  loadImage(image: string): void {
    execFileSync('bash', ['-c', `docker save ${image} | docker -H ${this.host} load`], { stdio: 'ignore' });
  }

  /** Stops the engine (its containers stop with it) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }

  async destroy(): Promise<void> {
    try {
      if (this.child && this.child.exitCode === null) {
        const list = await this.docker.listContainers({ all: true }).catch(() => []);
        await Promise.all(list.map((c) => this.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
      }
    } finally {
      await this.stop();
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

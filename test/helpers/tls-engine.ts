import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { issue, makeCa, type TestCa } from './certs.js';
import { freePort } from './redis.js';

/**
 * A Docker engine of the test's own, like SecondEngine, that also listens on
 * tcp://127.0.0.1:PORT with TLS and verifies client certificates (--tlsverify), as a remote
 * engine would. The unix socket stays for the test's own set-up (loading images).
 */
export class TlsEngine {
  readonly dir = mkdtempSync(join(tmpdir(), 'entry-tls-engine-'));
  readonly socket = join(this.dir, 'docker.sock');
  /** Over the unix socket, for set-up. */
  readonly docker = new Docker({ socketPath: this.socket });
  readonly ca: TestCa = makeCa('Docker Engine CA', mkdtempSync(join(tmpdir(), 'entry-engine-certs-')));
  readonly server = issue(this.ca, 'docker-engine', { sans: ['127.0.0.1', 'localhost'] });
  /** What a client (the broker) presents. */
  readonly client = issue(this.ca, 'entry-broker', { client: true });
  port = 0;
  private child: ChildProcess | undefined;

  get tcpUrl(): string {
    return `tcp://127.0.0.1:${this.port}`;
  }

  get unixHost(): string {
    return `unix://${this.socket}`;
  }

  async start(): Promise<void> {
    this.port ||= await freePort();
    const name = this.dir.split('/').pop()!;
    this.child = spawn(
      'dockerd',
      [
        '--host', this.unixHost,
        '--host', this.tcpUrl,
        '--tlsverify', '--tlscacert', this.ca.cert, '--tlscert', this.server.cert, '--tlskey', this.server.key,
        '--data-root', join(this.dir, 'data'),
        '--exec-root', join(this.dir, 'exec'),
        '--pidfile', join(this.dir, 'docker.pid'),
        '--bridge', 'none', '--iptables=false', '--ip-masq=false',
        '--containerd-namespace', name,
        '--containerd-plugins-namespace', `${name}-plugins`,
      ],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await this.docker.ping();
        return;
      } catch {
        if (Date.now() > deadline || this.child.exitCode !== null) throw new Error('TLS dockerd did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** A dockerode client over TCP+TLS, as the broker connects. */
  tlsClient(): Docker {
    return new Docker({ host: '127.0.0.1', port: this.port, protocol: 'https', ca: this.ca.pem(), cert: readFileSync(this.client.cert), key: readFileSync(this.client.key) });
  }

  loadImage(image: string): void {
    execFileSync('bash', ['-c', `docker save ${image} | docker -H ${this.unixHost} load`], { stdio: 'ignore' });
  }

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
      rmSync(this.ca.dir, { recursive: true, force: true });
    }
  }
}

import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { type CertFiles, issue, makeCa, type TestCa } from './certs.js';
import { stopChild, waitForChild } from './child.js';
import { TestContainers } from './containers.js';

/**
 * A Docker engine of the test's own beside the machine's, with its own socket, data root and
 * containerd, so a test can stop and restart an engine without touching the others.
 *
 * It runs in a network namespace of its own (`unshare --net`): a dockerd started with
 * `--bridge none` in the host's namespace deletes the host's docker0 at start (moby's
 * removeDefaultBridgeInterface), which breaks the machine's own engine until it restarts.
 * The unix socket is a file, so it stays reachable from the host's namespace.
 */
export interface TestEngineOptions {
  /**
   * Docker's own networking (a bridge, iptables rules, published ports, Compose's DNS), all inside
   * the engine's namespace: its bridges and rules are the namespace's, never the machine's.
   * Published ports are reached from inside it (`inNamespace`). Without it the engine has no
   * bridge and touches no iptables.
   */
  networking?: boolean;
}

export class TestEngine {
  readonly dir = mkdtempSync(join(tmpdir(), 'entry-engine-'));
  readonly socket = join(this.dir, 'docker.sock');
  /** Over the unix socket. */
  readonly docker = new Docker({ socketPath: this.socket });
  /** Labelled containers on this engine (load their image first); they go with the engine. */
  readonly containers = new TestContainers(this.docker);
  private child: ChildProcess | undefined;
  /** dockerd's last stderr lines, for a start-up failure. */
  private readonly logTail: string[] = [];

  constructor(private readonly options: TestEngineOptions = {}) {}

  get host(): string {
    return `unix://${this.socket}`;
  }

  async start(): Promise<void> {
    const name = this.dir.split('/').pop()!;
    const args = [
      '--host', this.host,
      '--data-root', join(this.dir, 'data'),
      '--exec-root', join(this.dir, 'exec'),
      '--pidfile', join(this.dir, 'docker.pid'),
      ...(this.options.networking ? [] : ['--bridge', 'none', '--iptables=false', '--ip6tables=false', '--ip-masq=false']),
      '--containerd-namespace', name,
      '--containerd-plugins-namespace', `${name}-plugins`,
    ];
    const listener = await this.listener();
    if (!listener) {
      // A new namespace's loopback is down: published ports bind to it.
      const up = this.options.networking ? 'ip link set lo up && ' : '';
      this.child = spawn('unshare', ['--net', '--', 'sh', '-c', `${up}exec dockerd "$@"`, 'dockerd', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    } else {
      // Socket activation: the listening socket was made in the host's namespace and keeps
      // belonging to it, so dockerd accepts on host loopback from inside its own namespace.
      // sd_listen_fds wants LISTEN_PID to be dockerd's own pid: the shell execs into it.
      // Node has no public way to hand a server's socket to a child but its descriptor.
      const fd = (listener.server as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
      if (fd < 0) throw new Error('no file descriptor for the engine\'s listening socket');
      this.child = spawn(
        'unshare',
        ['--net', '--', 'sh', '-c', 'export LISTEN_PID=$$ LISTEN_FDS=1; exec dockerd "$@"', 'dockerd', ...args, '--host', 'fd://', ...listener.args],
        { stdio: ['ignore', 'ignore', 'pipe', fd] },
      );
      // The child holds its own copy; the parent must not accept on it.
      listener.server.close();
    }
    const child = this.child;
    this.logTail.length = 0;
    let buf = '';
    child.stderr!.on('data', (c: Buffer) => {
      const lines = (buf + c.toString()).split('\n');
      buf = lines.pop()!;
      this.logTail.push(...lines);
      this.logTail.splice(0, Math.max(0, this.logTail.length - 20));
    });
    await waitForChild(child, 'the test dockerd', () => this.docker.ping(), 30_000, 100, () => `:\n${this.logTail.join('\n')}`);
  }

  /** A listening socket to hand to dockerd, with the flags that go with it; none for a unix-only engine. */
  protected async listener(): Promise<{ server: Server; args: string[] } | undefined> {
    return undefined;
  }

  /** Runs a command in the engine's network namespace (where its published ports are); its stdout. */
  async inNamespace(file: string, args: string[], timeoutMs = 30_000): Promise<string> {
    if (!this.child?.pid) throw new Error('the test dockerd is not running');
    const { stdout } = await promisify(execFile)('nsenter', [`--net=/proc/${this.child.pid}/ns/net`, '--', file, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 << 20 });
    return stdout;
  }

  /** Copies an image from the machine's engine (no registry needed). */
  loadImage(image: string): void {
    execFileSync('bash', ['-c', `docker save ${image} | docker -H ${this.host} load`], { stdio: 'ignore' });
  }

  /** Stops the engine (its containers stop with it) and waits for it to exit. */
  stop(): Promise<void> {
    return stopChild(this.child);
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

/**
 * A TestEngine that also listens on tcp://127.0.0.1:PORT with TLS and verifies client
 * certificates (--tlsverify), as a remote engine would. The unix socket stays for the test's
 * own set-up (loading images). The port stays the same across a stop and start.
 */
export class TlsTestEngine extends TestEngine {
  readonly ca: TestCa = makeCa('Docker Engine CA', mkdtempSync(join(this.dir, 'certs-')));
  readonly server: CertFiles = issue(this.ca, 'docker-engine', { sans: ['127.0.0.1', 'localhost'] });
  /** What a client (the broker) presents. */
  readonly client: CertFiles = issue(this.ca, 'entry-broker', { client: true });
  port = 0;

  get tcpUrl(): string {
    return `tcp://127.0.0.1:${this.port}`;
  }

  /** A dockerode client over TCP+TLS, as the broker connects. */
  tlsClient(): Docker {
    return new Docker({ host: '127.0.0.1', port: this.port, protocol: 'https', ca: this.ca.pem(), cert: readFileSync(this.client.cert), key: readFileSync(this.client.key) });
  }

  protected override async listener(): Promise<{ server: Server; args: string[] }> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', resolve);
    });
    this.port = (server.address() as { port: number }).port;
    return { server, args: ['--tlsverify', '--tlscacert', this.ca.cert, '--tlscert', this.server.cert, '--tlskey', this.server.key] };
  }
}

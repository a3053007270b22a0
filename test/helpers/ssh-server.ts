import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis.js';

/** Whether Debian's openssh-server is installed (deploy/dev/test.sh installs it). */
export const haveSshd = existsSync('/usr/sbin/sshd');

/**
 * Debian's sshd on 127.0.0.1:PORT with a configuration of the test's own: a fresh host key,
 * one client key allowed for root, no passwords. The machine's docker CLI serves
 * `docker system dial-stdio` for ssh:// Docker hosts.
 */
export class TestSshServer {
  readonly dir = mkdtempSync(join(tmpdir(), 'entry-sshd-'));
  readonly clientKey = join(this.dir, 'client_ed25519');
  readonly knownHosts = join(this.dir, 'known_hosts');
  port = 0;
  private child: ChildProcess | undefined;

  async start(): Promise<void> {
    this.port = await freePort();
    const hostKey = join(this.dir, 'host_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', this.clientKey]);
    writeFileSync(join(this.dir, 'authorized_keys'), readFileSync(`${this.clientKey}.pub`));
    const [type, key] = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/);
    writeFileSync(this.knownHosts, `[127.0.0.1]:${this.port},[::1]:${this.port} ${type} ${key}\n`);
    const config = join(this.dir, 'sshd_config');
    writeFileSync(
      config,
      [
        `Port ${this.port}`,
        'ListenAddress 127.0.0.1',
        'ListenAddress ::1',
        `HostKey ${hostKey}`,
        `PidFile ${join(this.dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(this.dir, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'MaxStartups 100:30:200',
        'MaxSessions 100',
      ].join('\n') + '\n',
    );
    mkdirSync('/run/sshd', { recursive: true });
    this.child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (await new Promise<boolean>((resolve) => connect(this.port, '127.0.0.1').once('connect', function (this: import('node:net').Socket) { this.destroy(); resolve(true); }).once('error', () => resolve(false)))) return;
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error('sshd did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

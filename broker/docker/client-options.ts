import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../config/config-error.js';
import type { DockerClientFiles } from '../config/fleet-settings.js';
import type { DockerClientOptions } from './engine.js';
import { knownHostsVerifier } from './ssh-known-hosts.js';

/**
 * Reads the TLS and ssh files the Docker clients need. ssh:// hosts must have their host key
 * in --docker-ssh-known-hosts (default ~/.ssh/known_hosts): an unknown key is refused.
 */
export function dockerClientOptions(files: DockerClientFiles, hosts: ReadonlyArray<{ url: string }>): DockerClientOptions {
  const read = (f: string | undefined) => (f ? readFileSync(f) : undefined);
  const options: DockerClientOptions = {};
  if (files.tlsCa || files.tlsCert) {
    options.tls = {};
    if (files.tlsCa) options.tls.ca = read(files.tlsCa)!;
    if (files.tlsCert) options.tls.cert = read(files.tlsCert)!;
    if (files.tlsKey) options.tls.key = read(files.tlsKey)!;
  }
  if (hosts.some((h) => h.url.startsWith('ssh://'))) {
    const fallback = join(homedir(), '.ssh', 'known_hosts');
    const knownHosts = files.sshKnownHosts ?? (existsSync(fallback) ? fallback : undefined);
    if (!knownHosts) throw new ConfigError('--docker-ssh-known-hosts', 'ssh:// Docker hosts need their host keys in a known_hosts file (none at ~/.ssh/known_hosts)');
    options.ssh = { hostVerifier: knownHostsVerifier(knownHosts) };
    if (files.sshKey) options.ssh.privateKey = read(files.sshKey)!;
  }
  return options;
}

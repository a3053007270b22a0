import type Docker from 'dockerode';
import { ConfigError } from '../config/config-error.js';
import type { HostContainerIndex } from './container-index.js';
import { connectDocker, type DockerClientOptions } from './engine.js';
import { ProcessReaper, type ReapMode } from './process-reaper.js';

/** One Docker engine the broker reaches, with its name as sessions and audit show it. */
export interface DockerHost {
  name: string;
  url: string;
  docker: Docker;
  reaper: ProcessReaper;
  /** Its containers, kept current from the event stream (set by ContainerIndex; absent: list on demand). */
  index?: HostContainerIndex;
}

/** Parses `[NAME=]URL`; a host without a name is called by its URL's host part, or `local`. */
export function parseHostSpec(spec: string): { name: string; url: string } {
  const m = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,62})=(.+)$/.exec(spec.trim());
  const url = (m ? m[2]! : spec).trim();
  if (!/^(unix|tcp|https?|ssh):\/\//.test(url) && !url.startsWith('/')) {
    throw new ConfigError('--docker-host', `want [NAME=]unix:///path, tcp://host:port or ssh://user@host, got ${JSON.stringify(spec)}`);
  }
  if (m) return { name: m[1]!, url };
  if (url.startsWith('unix://') || url.startsWith('/')) return { name: 'local', url };
  return { name: new URL(url).host, url };
}

export function connectHosts(specs: Array<{ name: string; url: string }>, reapMode: ReapMode, override?: Docker, client: DockerClientOptions = {}): DockerHost[] {
  return specs.map((s) => {
    const docker = override ?? connectDocker(s.url, client);
    return { ...s, docker, reaper: new ProcessReaper(docker, reapMode) };
  });
}

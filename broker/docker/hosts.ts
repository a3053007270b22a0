import type Docker from 'dockerode';
import type { Logger } from '../log.js';
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

/** A client and a reaper per engine; `log` hears of clean-ups that finish in the background. */
export function connectHosts(specs: Array<{ name: string; url: string }>, reapMode: ReapMode, override?: Docker, client: DockerClientOptions = {}, log?: Logger): DockerHost[] {
  return specs.map((s) => {
    const docker = override ?? connectDocker(s.url, client);
    return { ...s, docker, reaper: new ProcessReaper(docker, reapMode, log) };
  });
}

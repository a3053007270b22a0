import type { Backend } from './backend/backend.js';
import { Backends } from './backend/backends.js';
import type { BrokerConfig } from './config/config.js';
import { createDockerBackend, type DockerClient } from './docker/docker-backend.js';
import { createKubernetesBackend } from './kubernetes/kubernetes-backend.js';
import type { ReapMode } from './docker/process-reaper.js';
import type { Logger } from './log.js';
import type { BrokerMetrics } from './metrics/metrics.js';

/** Test overrides of the Docker backend: how leftovers are found, one client for every host. */
export interface DockerOverrides {
  reapMode?: ReapMode;
  client?: DockerClient;
}

export interface BackendWiring {
  config: BrokerConfig;
  log: Logger;
  metrics: BrokerMetrics | undefined;
  docker?: DockerOverrides;
}

/**
 * The backends this broker serves, from its configuration. A backend is one folder implementing
 * `Backend` (broker/backend/backend.ts) and one line here.
 */
export function createBackends(w: BackendWiring): Backends {
  const { config, log, metrics } = w;
  const list: Array<Backend | undefined> = [
    config.docker.hosts.length > 0 ? createDockerBackend({ config: config.docker, log, ...(w.docker?.reapMode ? { reapMode: w.docker.reapMode } : {}), ...(w.docker?.client ? { docker: w.docker.client } : {}), ...(metrics ? { onCall: (...c) => metrics.dockerCall(...c) } : {}) }) : undefined,
    config.kubernetes ? createKubernetesBackend({ ...config.kubernetes, log, onCall: metrics ? (...c) => metrics.kubeCall(...c) : undefined }) : undefined,
  ];
  return new Backends(list.filter((b): b is Backend => b !== undefined));
}

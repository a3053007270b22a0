import Docker from 'dockerode';
import { EntryError } from '../errors.js';

/** Connects to a Docker engine given as `unix:///path`, `tcp://host:port` or a bare socket path. */
export function connectDocker(host: string | undefined): Docker {
  if (!host) return new Docker({ socketPath: '/var/run/docker.sock' });
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  if (host.startsWith('/')) return new Docker({ socketPath: host });
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: url.protocol === 'https:' ? 'https' : 'http' });
}

/** Wraps a failed Engine API call: connection errors say the engine is unreachable. */
export function dockerFailure(err: unknown, what: string): EntryError {
  const e = err as { code?: string; statusCode?: number; json?: { message?: string }; message?: string };
  if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT' || e.code === 'ECONNRESET' || e.code === 'EPIPE' || e.code === 'ETIMEDOUT') {
    return new EntryError('ENTRY_DOCKER_UNAVAILABLE', `${what}: ${e.code}`, { cause: err });
  }
  const detail = e.json?.message ?? e.message ?? String(err);
  if (e.statusCode === 404) return new EntryError('ENTRY_CONTAINER_GONE', detail, { cause: err });
  if (e.statusCode === 409) return new EntryError('ENTRY_NOT_RUNNING', detail, { cause: err });
  return new EntryError('ENTRY_EXEC_FAILED', `${what}: ${detail}`, { cause: err });
}

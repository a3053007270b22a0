import type DockerClass from 'dockerode';
import { Docker } from './dockerode.js';
import { SshDialAgent, SshDialError } from './ssh-transport.js';
import { EntryError } from '../errors.js';

/** How the broker authenticates to remote engines (tcp:// with TLS, ssh://). */
export interface DockerClientOptions {
  /** PEM contents; with any of them set, tcp:// engines are reached over TLS (verified). */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** ssh:// engines: private key (else the agent at SSH_AUTH_SOCK) and the host keys to accept. */
  ssh?: { privateKey?: Buffer; hostVerifier?: (host: string, port: number) => (key: Buffer) => boolean };
}

/** The ssh:// clients' agents, whose kept connections `disconnectDocker` closes. */
const sshAgents = new WeakMap<DockerClass, SshDialAgent>();

/** Closes the connections a client keeps open between calls (ssh:// engines'); others keep none. */
export function disconnectDocker(docker: DockerClass): void {
  sshAgents.get(docker)?.destroy();
}

/**
 * Connects to a Docker engine given as `unix:///path`, a bare socket path, `tcp://host:port`
 * (TLS when TLS material is configured, or with `https://`), or `ssh://user@host[:port]`
 * (the engine's host needs the docker CLI: Entry runs `docker system dial-stdio` there).
 */
export function connectDocker(host: string | undefined, client: DockerClientOptions = {}): DockerClass {
  if (!host) return new Docker({ socketPath: '/var/run/docker.sock' });
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  if (host.startsWith('/')) return new Docker({ socketPath: host });
  if (host.startsWith('ssh://')) {
    const url = new URL(host);
    const port = Number(url.port || 22);
    const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const agent = new SshDialAgent({
      host: hostname,
      port,
      username: decodeURIComponent(url.username || 'root'),
      ...(client.ssh?.privateKey ? { privateKey: client.ssh.privateKey } : { agentSocket: process.env['SSH_AUTH_SOCK'] }),
      ...(client.ssh?.hostVerifier ? { hostVerifier: client.ssh.hostVerifier(hostname, port) } : {}),
    });
    // Every request goes through the agent's ssh connections: `host` only fills the requests'
    // Host header, which dockerd does not check. docker-modem passes `agent` to every request;
    // @types/dockerode does not list it.
    const options: DockerClass.DockerOptions & { agent: SshDialAgent } = { protocol: 'http', host: 'docker', port: 80, agent };
    const docker = new Docker(options);
    sshAgents.set(docker, agent);
    return docker;
  }
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  const tls = client.tls && (client.tls.ca || client.tls.cert) ? client.tls : undefined;
  const secure = url.protocol === 'https:' || tls !== undefined;
  return new Docker({
    host: url.hostname,
    port: Number(url.port || (secure ? 2376 : 2375)),
    protocol: secure ? 'https' : 'http',
    ...(tls?.ca ? { ca: tls.ca } : {}),
    ...(tls?.cert ? { cert: tls.cert } : {}),
    ...(tls?.key ? { key: tls.key } : {}),
  });
}

/**
 * The longest wait for an Engine API call that answers at once (inspect, resize): a few
 * milliseconds, seconds on a loaded engine. An engine stuck on a container's lock never
 * answers; without a bound the session waiting on it (for an exit code, a PID to end, a resize
 * holding input back) and the clean-up slot it holds would wait with it for good.
 */
export const ENGINE_CALL_TIMEOUT_MS = 10_000;

/** Options that abort a call after ENGINE_CALL_TIMEOUT_MS (dockerode passes `abortSignal` on). */
export function answerInTime(): { abortSignal: AbortSignal } {
  return { abortSignal: AbortSignal.timeout(ENGINE_CALL_TIMEOUT_MS) };
}

/**
 * Runs `work` with a signal that aborts its calls if their answer has not come within `ms`.
 * For calls whose answer opens a stream (a hijacked exec, a followed log): the signal stays on
 * the request for the stream's life, so unlike answerInTime it is disarmed once `work` is done.
 */
export async function answeredWithin<T>(ms: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), ms);
  try {
    return await work(deadline.signal);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether the engine answered a failed call with an HTTP status (refused it), rather than not at all. */
export function refused(err: unknown): boolean {
  return (err as { statusCode?: number }).statusCode !== undefined;
}

/**
 * Whether a failed call may have been carried out: it went out (the engine was reached) and no
 * answer came back, as when the link breaks in between.
 */
export function unanswered(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  // An ssh dial that failed never carried the request: the channel to the engine never opened.
  return !refused(err) && !(err instanceof SshDialError) && code !== 'ECONNREFUSED' && code !== 'ENOENT';
}

/** Wraps a failed Engine API call: connection errors say the engine is unreachable. */
export function dockerFailure(err: unknown, what: string): EntryError {
  const e = err as { code?: string; statusCode?: number; json?: { message?: string }; message?: string };
  if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT' || e.code === 'ECONNRESET' || e.code === 'EPIPE' || e.code === 'ETIMEDOUT') {
    return new EntryError('ENTRY_DOCKER_UNAVAILABLE', `${what}: ${e.code}`, { cause: err });
  }
  if (err instanceof SshDialError) return new EntryError('ENTRY_DOCKER_UNAVAILABLE', `${what}: ${err.message}`, { cause: err });
  if (e.code === 'ABORT_ERR') return new EntryError('ENTRY_DOCKER_UNAVAILABLE', `${what}: no answer in time`, { cause: err });
  const detail = e.json?.message ?? e.message ?? String(err);
  if (e.statusCode === 404) return new EntryError('ENTRY_CONTAINER_GONE', detail, { cause: err });
  if (e.statusCode === 409) return new EntryError('ENTRY_NOT_RUNNING', detail, { cause: err });
  return new EntryError('ENTRY_EXEC_FAILED', `${what}: ${detail}`, { cause: err });
}

import { Agent, type ClientRequest } from 'node:http';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import type { Client, ConnectConfig } from 'ssh2';

/** Where and how an ssh:// engine is reached. */
export interface SshEngine {
  /** A host name or an IP address, IPv6 without brackets. */
  host: string;
  port: number;
  username: string;
  /** Else the agent at `agentSocket`. */
  privateKey?: Buffer;
  agentSocket?: string;
  /** Accepts or refuses the host's key; without it ssh2 accepts any key. */
  hostVerifier?: (key: Buffer) => boolean;
  /** How long sshd may take to start `docker system dial-stdio` once logged in; SSH_DIAL_TIMEOUT_MS. */
  dialTimeoutMs?: number;
}

/** How long the ssh handshake and login may take before the Engine API call fails. */
export const SSH_READY_TIMEOUT_MS = 5_000;
/**
 * How long sshd may take, once logged in, to open a channel and start `docker system dial-stdio`
 * in it: ~0.5 s here (sshd forks the user's shell). Until the channel exists the Engine API call
 * has no socket, so its own deadline cannot end it (Node fails an aborted request only when its
 * socket comes), and an sshd that answers keepalives would hold the call for good.
 */
export const SSH_DIAL_TIMEOUT_MS = 10_000;
/** Keepalives on a long exec's connection, so that a dead peer is noticed. */
export const SSH_KEEPALIVE_INTERVAL_MS = 10_000;
/**
 * An idle connection, kept for the next Engine API call, is closed after this long: a session's
 * calls come within a second of each other, and the host index's sync every few seconds.
 */
export const SSH_IDLE_MS = 15_000;
/** Idle connections kept per engine: a burst of calls opens more, and the rest close at once. */
export const SSH_IDLE_CONNECTIONS = 4;

const require = createRequire(import.meta.url);
let ssh2: typeof import('ssh2') | undefined;

/**
 * The engine could not be reached over ssh (refused, a host key not known, a login or dial that
 * took too long): the engine's own answer never came, so the call counts as the engine unavailable.
 */
export class SshDialError extends Error {
  override readonly name = 'SshDialError';
  /** The socket's own code (ECONNREFUSED, ETIMEDOUT, …) when the connection failed there. */
  readonly code: string | undefined;

  constructor(message: string, options: { cause: Error }) {
    super(message, options);
    const code = (options.cause as { code?: unknown }).code;
    this.code = typeof code === 'string' ? code : undefined;
  }
}

/** The net.Socket methods Node's HTTP agent calls on a socket it keeps; an ssh channel has none. */
type KeptChannel = Duplex & { ref(): void; unref(): void };

/**
 * An HTTP agent for the Engine API of an ssh:// engine: each connection is an ssh connection
 * of its own running `docker system dial-stdio` on the engine's host, as the docker CLI does,
 * and is kept open between calls (HTTP keep-alive) until SSH_IDLE_MS pass or the agent is
 * destroyed: opening one took ~0.6 s here (0.1 s the handshake and login, 0.5 s sshd starting
 * the command) where a call on an open one takes milliseconds. ssh2 is loaded on the first
 * connection, so brokers without ssh:// engines never load it.
 *
 * docker-modem's own ssh transport is not used: it builds the request's URL from the host name
 * with `url.parse`, which gives an invalid URL for every host (Node's DEP0170 warning on the
 * broker's stderr) and fails an IPv6 address outright.
 */
export class SshDialAgent extends Agent {
  private readonly idle = new WeakMap<Duplex, NodeJS.Timeout>();

  constructor(private readonly engine: SshEngine) {
    super({ keepAlive: true, maxFreeSockets: SSH_IDLE_CONNECTIONS });
  }

  /** A connection whose call is done waits SSH_IDLE_MS for the next one. */
  override keepSocketAlive(socket: Duplex): boolean {
    const timer = setTimeout(() => socket.destroy(), SSH_IDLE_MS);
    timer.unref();
    this.idle.set(socket, timer);
    return true;
  }

  override reuseSocket(socket: Duplex, request: ClientRequest): void {
    clearTimeout(this.idle.get(socket));
    this.idle.delete(socket);
    super.reuseSocket(socket as never, request);
  }

  override createConnection(_options: unknown, callback: (err: Error | null, stream?: Duplex) => void): undefined {
    ssh2 ??= require('ssh2') as typeof import('ssh2');
    const conn: Client = new ssh2.Client();
    let stream: Duplex | undefined;
    let settled = false;
    const settle = (err: Error | null, s?: Duplex) => {
      if (settled) return;
      settled = true;
      callback(err && new SshDialError(err.message, { cause: err }), s);
    };
    let dialing: NodeJS.Timeout | undefined;
    conn
      .once('ready', () => {
        const ms = this.engine.dialTimeoutMs ?? SSH_DIAL_TIMEOUT_MS;
        dialing = setTimeout(() => {
          settle(new Error(`ssh: ${this.engine.host} did not start docker system dial-stdio within ${ms} ms`));
          conn.destroy();
        }, ms);
        conn.exec('docker system dial-stdio', (err, channel) => {
          clearTimeout(dialing);
          if (settled) {
            // Too late: the call has already failed.
            channel?.destroy();
            return;
          }
          if (err) {
            conn.end();
            return settle(err);
          }
          const kept = Object.assign(channel, { ref: noop, unref: noop }) satisfies KeptChannel;
          stream = kept;
          channel.once('close', () => {
            clearTimeout(this.idle.get(kept));
            conn.end();
          });
          settle(null, kept);
        });
      })
      .on('error', (err) => {
        // Before the stream is handed over the request fails with it; after, the stream does.
        if (stream) stream.destroy(err);
        else settle(err);
        conn.end();
      })
      .once('close', () => {
        clearTimeout(dialing);
        settle(new Error('ssh connection closed before docker system dial-stdio ran'));
      });
    conn.connect(this.connectConfig());
    return undefined;
  }

  private connectConfig(): ConnectConfig {
    const e = this.engine;
    return {
      host: e.host,
      port: e.port,
      username: e.username,
      ...(e.privateKey ? { privateKey: e.privateKey } : e.agentSocket ? { agent: e.agentSocket } : {}),
      ...(e.hostVerifier ? { hostVerifier: e.hostVerifier } : {}),
      readyTimeout: SSH_READY_TIMEOUT_MS,
      keepaliveInterval: SSH_KEEPALIVE_INTERVAL_MS,
    };
  }
}

function noop(): void {}

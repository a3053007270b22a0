import { Agent } from 'node:http';
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
}

/** How long the ssh handshake and login may take before the Engine API call fails. */
export const SSH_READY_TIMEOUT_MS = 5_000;
/** Keepalives on a long exec's connection, so that a dead peer is noticed. */
export const SSH_KEEPALIVE_INTERVAL_MS = 10_000;

const require = createRequire(import.meta.url);
let ssh2: typeof import('ssh2') | undefined;

/**
 * An HTTP agent for the Engine API of an ssh:// engine: each connection is an ssh connection
 * of its own running `docker system dial-stdio` on the engine's host, as the docker CLI does.
 * ssh2 is loaded on the first connection, so brokers without ssh:// engines never load it.
 *
 * docker-modem's own ssh transport is not used: it builds the request's URL from the host name
 * with `url.parse`, which gives an invalid URL for every host (Node's DEP0170 warning on the
 * broker's stderr) and fails an IPv6 address outright.
 */
export class SshDialAgent extends Agent {
  constructor(private readonly engine: SshEngine) {
    super({ keepAlive: false });
  }

  override createConnection(_options: unknown, callback: (err: Error | null, stream?: Duplex) => void): undefined {
    ssh2 ??= require('ssh2') as typeof import('ssh2');
    const conn: Client = new ssh2.Client();
    let stream: Duplex | undefined;
    let settled = false;
    const settle = (err: Error | null, s?: Duplex) => {
      if (settled) return;
      settled = true;
      callback(err, s);
    };
    conn
      .once('ready', () => {
        conn.exec('docker system dial-stdio', (err, channel) => {
          if (err) {
            conn.end();
            return settle(err);
          }
          stream = channel;
          channel.once('close', () => conn.end());
          settle(null, channel);
        });
      })
      .on('error', (err) => {
        // Before the stream is handed over the request fails with it; after, the stream does.
        if (stream) stream.destroy(err);
        else settle(err);
        conn.end();
      })
      .once('close', () => settle(new Error('ssh connection closed before docker system dial-stdio ran')));
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

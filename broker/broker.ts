import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Docker from 'dockerode';
import { createDevIdentity } from './auth/dev.js';
import { loadVerificationKey, type VerificationKey } from './auth/keys.js';
import { AccessPolicy } from './auth/policy.js';
import { TokenVerifier } from './auth/verifier.js';
import type { BrokerConfig } from './config/config.js';
import { connectDocker } from './docker/engine.js';
import { ProcessReaper, type ReapMode } from './docker/process-reaper.js';
import { ContainerResolver } from './docker/resolver.js';
import { EntryError } from './errors.js';
import type { ApiDeps } from './http/api.js';
import { createRequestHandler } from './http/routes.js';
import { MemoryTicketStore } from './auth/tickets.js';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { createLogger, type Logger } from './log.js';
import { runAttachSession } from './session/attach-session.js';
import { runExecSession, type LiveSession } from './session/exec-session.js';
import { Gateway } from './transport/gateway.js';

export interface BrokerOptions {
  log?: Logger;
  /** How leftover processes are found: `auto` prefers the host's /proc. */
  reapMode?: ReapMode;
  docker?: Docker;
  /** Where the built console lives (default: dist/console beside the broker). */
  consoleRoot?: string;
}

/** The built console: dist/console at the package root, whether running from dist/ or sources. */
const PACKAGE_ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/broker/') ? '../../' : '../', import.meta.url));
const DEFAULT_CONSOLE_ROOT = join(PACKAGE_ROOT, 'dist', 'console');

/** The assembled broker: HTTP server, WebSocket gateway, sessions. */
export class EntryBroker {
  readonly log: Logger;
  private server: Server | undefined;
  private gateway: Gateway | undefined;
  private readonly sessions = new Map<string, LiveSession>();
  private draining = false;
  /** The dev token, in dev mode only. */
  devToken: string | undefined;

  constructor(
    readonly config: BrokerConfig,
    private readonly options: BrokerOptions = {},
  ) {
    this.log = options.log ?? createLogger(config.logLevel);
  }

  get url(): string {
    const addr = this.server?.address() as AddressInfo | null;
    if (!addr) throw new Error('broker not listening');
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return `http://${host}:${addr.port}`;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  async start(): Promise<void> {
    const { config } = this;
    const docker = this.options.docker ?? connectDocker(config.docker.host);
    const reaper = new ProcessReaper(docker, this.options.reapMode ?? config.docker.reapMode);
    const server = createServer(
      {
        // Slow-loris protection: headers (upgrades included) must arrive within the handshake
        // timeout; Node checks at this interval.
        headersTimeout: config.limits.handshakeTimeoutMs,
        requestTimeout: config.limits.handshakeTimeoutMs,
        connectionsCheckingInterval: Math.min(1_000, config.limits.handshakeTimeoutMs),
      },
      createRequestHandler({
        dockerReady: async () => {
          try {
            await docker.ping();
            return true;
          } catch {
            return false;
          }
        },
        draining: () => this.draining,
        api: () => api,
        consoleRoot: this.options.consoleRoot ?? DEFAULT_CONSOLE_ROOT,
      }),
    );
    let api: ApiDeps | undefined;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.listen.port, config.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    let key: VerificationKey;
    if (config.dev) {
      const dev = await createDevIdentity(this.url.replace('0.0.0.0', '127.0.0.1'));
      key = dev.key;
      this.devToken = dev.token;
      this.log.info('dev mode: token saved for the local user', { user: dev.user, broker: this.url });
    } else {
      key = loadVerificationKey(config.auth);
    }
    const sessionDeps = {
      docker,
      reaper,
      log: this.log,
      pingIntervalMs: config.limits.pingIntervalMs,
      startTimeoutMs: config.limits.startTimeoutMs,
      terminateGraceMs: config.limits.killGraceMs,
      idleTimeoutMs: config.limits.idleTimeoutMs,
      maxSessionMs: config.limits.maxSessionMs,
    };
    const track = (s: LiveSession) => {
      this.sessions.set(s.id, s);
      return () => this.sessions.delete(s.id);
    };
    const verifier = new TokenVerifier(key, config.auth);
    const policy = new AccessPolicy(config.auth.denyApps);
    const tickets = new MemoryTicketStore();
    api = { verifier, policy, tickets, docker };
    this.gateway = new Gateway({
      config,
      verifier,
      policy,
      tickets,
      resolver: new ContainerResolver(docker),
      log: this.log,
      admissible: () => {
        if (this.draining) throw new EntryError('ENTRY_DRAINING');
        if (this.sessions.size >= config.limits.maxSessions) throw new EntryError('ENTRY_TOO_MANY_SESSIONS', `limit ${config.limits.maxSessions}`);
      },
      onAdmitted: (route, upgrade) => {
        const run = route === 'enter' ? runExecSession(upgrade, sessionDeps, track) : runAttachSession(upgrade, docker, this.log);
        run.catch((err: unknown) => this.log.error('session crashed', { session: upgrade.sessionId, error: err as Error }));
      },
    });
    const gateway = this.gateway;
    server.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head));
    this.log.info('listening', { url: this.url });
  }

  /** Stops accepting, ends every session with a CLOSE reason, closes the server. */
  async stop(): Promise<void> {
    this.draining = true;
    await Promise.all([...this.sessions.values()].map((s) => s.stop(new EntryError('ENTRY_DRAINING'))));
    this.gateway?.close();
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

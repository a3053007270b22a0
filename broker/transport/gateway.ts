import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { encodeResponse, ResponseType, utf8 } from '../../proto/codec.js';
import type { Identity } from '../auth/identity.js';
import type { AccessPolicy } from '../auth/policy.js';
import type { TokenVerifier } from '../auth/verifier.js';
import type { BrokerConfig } from '../config/config.js';
import type { ContainerResolver, ResolvedContainer, Target } from '../docker/resolver.js';
import { validateTarget } from '../docker/resolver.js';
import { EntryError, isEntryError } from '../errors.js';
import type { Logger } from '../log.js';
import { closeLine } from './close-line.js';
import { readUpgradeRequest, type UpgradeRequest } from './credentials.js';

/** An upgrade that passed authentication, permission and resolution. */
export interface AdmittedUpgrade {
  sessionId: string;
  ws: WebSocket;
  request: UpgradeRequest;
  identity: Identity;
  target: Target;
  container: ResolvedContainer;
  remoteAddress: string;
}

export type Route = 'enter' | 'attach';

export interface GatewayDeps {
  config: BrokerConfig;
  verifier: TokenVerifier;
  policy: AccessPolicy;
  resolver: ContainerResolver;
  log: Logger;
  onAdmitted(route: Route, upgrade: AdmittedUpgrade): void;
  /** False while draining: new upgrades are refused. */
  accepting(): boolean;
}

/**
 * The WebSocket front door. Everything that can refuse a caller happens here, before the
 * session exists: token, permission, container lookup. A refused caller still gets a CLOSE
 * message with the reason (original clients print it) but nothing reaches Docker's exec API.
 */
export class Gateway {
  private readonly wss: WebSocketServer;

  constructor(private readonly deps: GatewayDeps) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: deps.config.limits.maxFrameBytes,
      perMessageDeflate: false,
      // Never echo a credential-bearing subprotocol: pick ours or none.
      handleProtocols: (protocols) => (protocols.has('entry.v1') ? 'entry.v1' : false),
    });
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://entry.invalid');
    const route: Route | undefined = url.pathname === '/enter' ? 'enter' : url.pathname === '/attach' ? 'attach' : undefined;
    if (!route) {
      rejectHttp(socket, 404, 'Not Found');
      return;
    }
    if (!this.originAllowed(req)) {
      this.deps.log.warn('upgrade refused: origin', { origin: req.headers.origin, remote: req.socket.remoteAddress });
      rejectHttp(socket, 403, 'Forbidden');
      return;
    }
    socket.on('error', () => undefined);
    const request = readUpgradeRequest(req);
    void this.admit(request).then(
      ({ identity, target, container }) => {
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          this.deps.onAdmitted(route, {
            sessionId: randomUUID(),
            ws,
            request,
            identity,
            target,
            container,
            remoteAddress: req.socket.remoteAddress ?? '',
          });
        });
      },
      (err: unknown) => {
        const error = isEntryError(err) ? err : new EntryError('ENTRY_INTERNAL', undefined, { cause: err });
        this.deps.log.info('upgrade refused', { route, code: error.code, reason: error.message, remote: req.socket.remoteAddress, app: request.app });
        this.wss.handleUpgrade(req, socket, head, (ws) => refuse(ws, error, request.protocol2));
      },
    );
  }

  private async admit(request: UpgradeRequest): Promise<{ identity: Identity; target: Target; container: ResolvedContainer }> {
    if (!this.deps.accepting()) throw new EntryError('ENTRY_DRAINING');
    // Order matters: nothing about the target is looked up before the caller is known.
    const identity = await this.deps.verifier.verify(request.token);
    const target = validateTarget(request.app, request.proc, request.instance);
    this.deps.policy.check(identity, target.app);
    const container = await this.deps.resolver.resolve(target);
    return { identity, target, container };
  }

  private originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    // Non-browser clients send no Origin; browsers always do.
    if (!origin) return true;
    if (this.deps.config.allowedOrigins.includes(origin)) return true;
    try {
      return new URL(origin).host === req.headers.host;
    } catch {
      return false;
    }
  }

  close(): void {
    this.wss.close();
  }
}

/** Tells a refused client why, the way original clients expect: a red CLOSE line. */
export function refuse(ws: WebSocket, error: EntryError, protocol2: boolean): void {
  const frame = encodeResponse(ResponseType.CLOSE, utf8(closeLine({ kind: 'failed', error })), protocol2 ? error.code : '');
  ws.send(frame, { binary: true });
  ws.close(error.closeCode, error.code);
  const timer = setTimeout(() => ws.terminate(), 5_000);
  timer.unref();
  ws.once('close', () => clearTimeout(timer));
}

function rejectHttp(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

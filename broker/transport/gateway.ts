import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SecureContext } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import { ResponseType, utf8 } from '../../proto/codec.js';
import { PING_INTERVAL_HEADER, RESUME_GRACE_HEADER } from '../../proto/silence.js';
import type { Identity } from '../auth/identity.js';
import type { AccessPolicy } from '../auth/policy.js';
import type { TicketStore } from '../auth/tickets.js';
import type { AuthGuard } from '../auth/guard.js';
import type { BrokerConfig } from '../config/config.js';
import type { ResolvedTarget, Target } from '../backend/backend.js';
import { validateTarget } from '../backend/target.js';
import { hasSessionIdShape } from '../../proto/session-id.js';
import { withTimeout } from '../backend/with-timeout.js';
import { EntryError, ignoreError, isEntryError } from '../errors.js';
import type { FaultReporter } from '../fault.js';
import type { AdmittedSession, AdmittedWatch } from '../session/types.js';
import type { Logger } from '../log.js';
import { clientAddress, normalizeAddress } from './client-address.js';
import { rawAnswer } from '../http/raw-answer.js';
import { requestId } from '../http/request-id.js';
import { pathTrick, requestUrl } from '../http/request-url.js';
import { closeLine } from './close-line.js';
import { isBrokerCertificate } from './broker-certificate.js';
import { clientCertificateSubject, verifiedPeerCertificate } from './tls.js';
import { applyWebCredentials, readUpgradeRequest, SUBPROTOCOL, type UpgradeRequest } from './credentials.js';
import { type Framing, jsonFraming, protobufFraming } from './framing.js';
import { FORWARDED_BY_HEADER, forwardedClientCert, forwardUpgrade } from './forward.js';
import { START_FRAME_FACTOR, WsTerminal } from './ws-terminal.js';

/** What the gateway knows of an admitted client, before its terminal is made. */
interface Admitted {
  ws: WebSocket;
  socket: Duplex;
  request: UpgradeRequest;
  identity: Identity;
  target: Target;
  container: ResolvedTarget;
  remoteAddress: string;
  clientCert?: string | undefined;
  framing: Framing;
  /** Messages that arrived while the caller was being admitted (web mode). */
  pending: Array<[Buffer, boolean]>;
}

export type Route = 'enter' | 'attach';

export interface GatewayDeps {
  config: BrokerConfig;
  guard: AuthGuard;
  policy: AccessPolicy;
  resolver: { resolve(target: Target): Promise<ResolvedTarget> };
  tickets: TicketStore;
  log: Logger;
  onAdmitted(route: Route, session: AdmittedSession): void;
  /** An admin's read-only view of a running session (GET /watch?session=ID). */
  onWatch(watch: AdmittedWatch): void;
  /** Throws EntryError when no new session may start now (draining, at the session limit); a resume adds none. */
  admissible(resume?: boolean): void;
  /** Told of unexpected errors (bugs) met while admitting: logged with their stack and counted. */
  fault?: FaultReporter;
  /**
   * Where a session to resume is held when another broker holds it: that broker's advertised
   * URL; undefined when it is held here, or unknown (then the resume is handled here).
   */
  locateSession?(sessionId: string): Promise<string | undefined>;
  /** This broker, named in the upgrades it hands to another. */
  brokerId?: string;
  /** Peers whose `entry-forwarded-by` is believed (the other brokers: trusted proxies). */
  trustsPeer?(address: string): boolean;
  /** The TLS context for handing a resume to another broker (its CA, this broker's certificate). */
  peerTls?(): SecureContext;
  /** The name a holder's certificate must hold, when not the host of its URL (--peer-name). */
  peerName?: string | undefined;
  /** Why a hand-off failed, when the reason is TLS (see peer-tls-failure.ts). */
  peerTlsFailure?(err: Error): string | undefined;
  /** Told of every refused upgrade (metrics). */
  onRefused?(info: { code: string; reason: string; source: string; app?: string; proc?: string; instance?: string }): void;
}

/**
 * The WebSocket front door. Everything that can refuse a caller happens here, before the
 * session exists: token, permission, container lookup. A refused caller still gets a CLOSE
 * message with the reason (original clients print it) but nothing reaches Docker's exec API.
 */
export class Gateway {
  private readonly wss: WebSocketServer;
  /** Admissions under way (token, lookup, a resume's holder): a drain answers them before the broker exits. */
  private readonly underWayNow = new Set<Promise<unknown>>();
  /** Web-mode clients whose credentials message has not come yet, and how to refuse each. */
  private readonly awaitingCredentials = new Set<(error: EntryError) => void>();
  /** Rejects with ENTRY_DRAINING when the drain begins: every admission under way loses to it. */
  private readonly drainBegun: Promise<never>;
  private beginDrain!: (error: EntryError) => void;

  constructor(private readonly deps: GatewayDeps) {
    this.drainBegun = new Promise<never>((_, reject) => (this.beginDrain = reject));
    this.drainBegun.catch(() => undefined);
    this.wss = new WebSocketServer({
      noServer: true,
      // START may take this much (WsTerminal); any other message over --max-frame is read and
      // refused with a CLOSE line saying why; beyond it ws cuts the connection itself (1009, no line).
      maxPayload: deps.config.limits.maxFrameBytes * START_FRAME_FACTOR,
      perMessageDeflate: false,
      // Never echo a credential-bearing subprotocol: pick ours or none.
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    // The ping interval, for clients that watch for a link gone silent without a resume ticket
    // to tell it them, and whether tickets come at all (headers: clients that do not know them
    // read past them).
    const said = [`${PING_INTERVAL_HEADER}: ${deps.config.limits.pingIntervalMs}`, `${RESUME_GRACE_HEADER}: ${deps.config.limits.resumeGraceMs}`];
    this.wss.on('headers', (headers: string[]) => headers.push(...said));
    // A handshake ws will not complete (not GET, no valid Sec-WebSocket-Key or -Version): ws
    // would answer it in plain text; it is refused as every other upgrade, with the registry's code.
    this.wss.on('wsClientError', (err: Error, socket: Duplex, req: IncomingMessage) => {
      const request = requestId(req);
      const notGet = req.method !== 'GET';
      const error = notGet ? new EntryError('ENTRY_METHOD_NOT_ALLOWED', `${req.method}: an upgrade is a GET`) : new EntryError('ENTRY_BAD_REQUEST', err.message);
      deps.log.info('upgrade refused', { request, code: error.code, reason: error.message, remote: clientAddress(req) });
      rejectHttp(socket, error, request, notGet ? { allow: 'GET' } : {});
    });
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // The socket already has an error listener (upgradeBoundary): a client resetting it while
    // it is answered below must not end the process.
    const url = requestUrl(req);
    const routes: Record<string, Route | 'watch'> = { '/enter': 'enter', '/attach': 'attach', '/watch': 'watch' };
    const route = url ? routes[url.pathname] : undefined;
    if (!url) {
      rejectHttp(socket, new EntryError('ENTRY_BAD_REQUEST', 'the request target is not a path'), requestId(req));
      return;
    }
    const trick = pathTrick(req);
    if (trick) {
      this.deps.log.info('upgrade refused', { request: requestId(req), code: trick.code, reason: trick.message, remote: clientAddress(req) });
      rejectHttp(socket, trick, requestId(req));
      return;
    }
    if (!route) {
      // Answered as the same path without the upgrade would be: JSON with the registry's code.
      const refusal = { status: 404, code: 'ENTRY_NOT_FOUND', message: `not found: ${url.pathname} (the WebSocket endpoints are ${Object.keys(routes).join(', ')})` } as const;
      rejectHttp(socket, refusal, requestId(req));
      return;
    }
    if (!this.originAllowed(req)) {
      this.deps.log.warn('upgrade refused: origin', { request: requestId(req), origin: req.headers.origin, remote: req.socket.remoteAddress });
      rejectHttp(socket, new EntryError('ENTRY_BAD_ORIGIN', req.headers.origin), requestId(req));
      return;
    }
    const request = readUpgradeRequest(req);
    const remoteAddress = clientAddress(req);
    let clientCert = clientCertificateSubject(req);
    if (route === 'watch') {
      this.admitWatch(req, socket, head, request, url.searchParams.get('session') ?? '', remoteAddress);
      return;
    }
    if (request.webMode) {
      this.accept(req, socket, head, (ws) => this.admitWebMode(route, ws, socket, request, remoteAddress, clientCert));
      return;
    }
    // Marked as handed on by another broker: counted from a trusted peer only. A client's own
    // marking is ignored (and dropped if the upgrade is handed on), so its resume goes on as usual.
    const forwardedBy = req.headers[FORWARDED_BY_HEADER];
    const fromPeer = typeof forwardedBy === 'string' && this.deps.trustsPeer?.(req.socket.remoteAddress ?? '') === true;
    if (route === 'enter' && request.protocol2 && request.resume && !fromPeer && this.deps.locateSession) {
      // A resume that reached a broker not holding the session goes to the one that does.
      const admitHere = () => this.admitUpgrade(req, socket, head, route, request, remoteAddress, clientCert);
      // Bounded as the admission is: a store that does not answer leaves the resume to this broker.
      this.underWay(withinAdmission(this.deps.locateSession(request.resume), this.deps.config.limits.handshakeTimeoutMs, () => 'locating')).then(
        (holder) => {
          if (!holder) return admitHere();
          // The client's certificate (mTLS) is seen here only (the holder sees this broker's): named to the holder in a header.
          this.deps.log.info('resume forwarded', { request: request.requestId, session: request.resume, to: holder, remote: remoteAddress, ...(clientCert ? { clientCert } : {}) });
          const notForwarded = (err: Error, connected: boolean) => {
            const tlsReason = this.deps.peerTlsFailure?.(err);
            if (tlsReason) {
              // The session lives on at the holder: told as what it is, not as a session gone.
              this.deps.log.warn('resume not forwarded: TLS', { request: request.requestId, session: request.resume, to: holder, reason: tlsReason, code: (err as NodeJS.ErrnoException).code });
              const error = this.refusal(new EntryError('ENTRY_HANDOFF_REFUSED', `request ${request.requestId}`), route, request, remoteAddress);
              this.accept(req, socket, head, (ws) => refuse(ws, socket, error, request.protocol2, protobufFraming), request.protocol2);
              return;
            }
            if (connected) {
              // The holder took the request and went (a restart, a drain): the client tries again, as before.
              this.deps.log.warn('resume not forwarded: holder closed the connection', { request: request.requestId, session: request.resume, to: holder, error: err });
              socket.destroy();
              return;
            }
            // The holder is gone, and the session with it: answered here (ENTRY_RESUME_EXPIRED).
            this.deps.log.warn('resume not forwarded: holder unreachable', { request: request.requestId, session: request.resume, to: holder, error: err });
            admitHere();
          };
          try {
            forwardUpgrade(
              req,
              socket,
              head,
              holder,
              this.deps.brokerId ?? '',
              { keepAliveMs: this.deps.config.limits.tcpKeepAliveMs, connectTimeoutMs: this.deps.config.limits.handshakeTimeoutMs, secureContext: this.deps.peerTls?.(), peerName: this.deps.peerName, clientCert },
              notForwarded,
            );
          } catch (err) {
            // An address in the shared store that is no URL, or a port out of range.
            notForwarded(err as Error, false);
          }
        },
        () => admitHere(),
      );
      return;
    }
    // A trusted peer's marking is never handed on again, whatever its certificate: a broker whose
    // certificate fails the check below would otherwise hand a stale resume to itself forever.
    if (fromPeer) {
      const hop = verifiedPeerCertificate(req);
      if (!hop) {
        // No certificate on the hop (no mTLS): the address is all there is to go by. A proxy
        // passing on what its client wrote names no certificate that is believed.
        request.via = forwardedBy;
      } else if (isBrokerCertificate(hop, req.socket.remoteAddress ?? '', this.deps.peerName)) {
        request.via = forwardedBy;
        // The certificate on this hop is the forwarding broker's: the client's is the one it names (none if it names none).
        clientCert = forwardedClientCert(req);
      } else {
        // A person's certificate from a trusted address (a TCP pass-through load balancer): its
        // own subject is the client's; what it wrote about another broker and another person is not.
        this.deps.log.warn("forwarded headers not believed: the hop's certificate is not a broker's", {
          request: request.requestId,
          remote: remoteAddress,
          clientCert,
          needs: this.deps.peerName ? `--peer-name ${this.deps.peerName}` : `the address ${normalizeAddress(req.socket.remoteAddress ?? '')}`,
        });
      }
    }
    this.admitUpgrade(req, socket, head, route, request, remoteAddress, clientCert);
  }

  private admitUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, route: Route, request: UpgradeRequest, remoteAddress: string, clientCert: string | undefined): void {
    void this.admit(route, request, remoteAddress).then(
      (admitted) => {
        this.accept(req, socket, head, (ws) => {
          this.deps.onAdmitted(route, this.session(route, { ws, socket, request, ...admitted, remoteAddress, clientCert, framing: protobufFraming, pending: [] }));
        }, request.protocol2);
      },
      (err: unknown) => {
        const error = this.refusal(err, route, request, remoteAddress);
        this.accept(req, socket, head, (ws) => refuse(ws, socket, error, request.protocol2, protobufFraming), request.protocol2);
      },
    );
  }

  /**
   * Completes the upgrade. A protocol error from the client (bad frame bits, oversized frame)
   * is reported by ws as an 'error' event before it closes the socket; a listener must exist
   * from the first moment, or Node treats it as an uncaught error and the broker dies.
   */
  private accept(req: IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WebSocket) => void, protocol2 = false): void {
    try {
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', ignoreError);
        try {
          cb(ws);
        } catch (err) {
          // A fault while starting the session stays with this socket: the client is told.
          this.deps.fault?.('upgrade', err, { request: requestId(req) });
          refuse(ws, socket, new EntryError('ENTRY_INTERNAL', `request ${requestId(req)}`), protocol2);
        }
      });
    } catch (err) {
      this.deps.fault?.('upgrade', err, { request: requestId(req) });
      socket.destroy();
    }
  }

  /** /watch: admins only; the session may run on any broker sharing the store. */
  private admitWatch(req: IncomingMessage, socket: Duplex, head: Buffer, request: UpgradeRequest, sessionId: string, remoteAddress: string): void {
    const admit = async () => {
      this.deps.admissible();
      if (!hasSessionIdShape(sessionId)) throw new EntryError('ENTRY_BAD_REQUEST', 'watch needs ?session=<id>');
      const identity = await this.underWay(withinAdmission(this.deps.guard.authenticate(request.token, remoteAddress), this.deps.config.limits.handshakeTimeoutMs, () => 'authenticating'));
      if (!identity.admin) throw new EntryError('ENTRY_NOT_ADMIN', `${identity.user} may not watch sessions`);
      return identity;
    };
    admit().then(
      (identity) => this.accept(req, socket, head, (ws) => this.deps.onWatch({ terminal: this.terminal(ws, socket, request.protocol2, false, protobufFraming, []), identity, sessionId, remoteAddress })),
      (err: unknown) => {
        const error = this.refusal(err, 'watch', request, remoteAddress);
        this.accept(req, socket, head, (ws) => refuse(ws, socket, error, request.protocol2, protobufFraming));
      },
    );
  }

  /**
   * The original web mode: the credentials come in the first message, as JSON. Nothing more is
   * read until the caller is admitted: what the client sends meanwhile waits in its own and the
   * kernel's buffers, and `pending` holds only what had already arrived with the credentials.
   */
  private admitWebMode(route: Route, ws: WebSocket, socket: Duplex, request: UpgradeRequest, remoteAddress: string, clientCert?: string): void {
    const pending: Array<[Buffer, boolean]> = [];
    let first = true;
    const refuseWeb = (error: EntryError) => {
      this.awaitingCredentials.delete(refuseWeb);
      clearTimeout(timer);
      uncap();
      // Read on, to hear the client's close frame, but keep nothing it sends.
      ws.off('message', onMessage);
      ws.resume();
      refuse(ws, socket, error, false, jsonFraming);
    };
    // ws gathers a message whole before it is handed on, up to its maxPayload (MiBs): before
    // the caller is known, no more than a credentials message is read.
    const uncap = capIncoming(socket, CREDENTIALS_MAX_BYTES, () =>
      refuseWeb(new EntryError('ENTRY_FRAME_TOO_LARGE', `the credentials message is over ${CREDENTIALS_MAX_BYTES} bytes`)),
    );
    const timer = setTimeout(() => refuseWeb(new EntryError('ENTRY_START_TIMEOUT', 'no credentials message')), this.deps.config.limits.startTimeoutMs);
    const onMessage = (data: Buffer, isBinary: boolean) => {
      if (!first) {
        pending.push([data, isBinary]);
        return;
      }
      first = false;
      clearTimeout(timer);
      uncap();
      this.awaitingCredentials.delete(refuseWeb);
      ws.pause();
      let creds: unknown;
      try {
        creds = JSON.parse(data.toString('utf8'));
      } catch {
        refuseWeb(new EntryError('ENTRY_BAD_FRAME', 'the first message must be the JSON credentials'));
        return;
      }
      const full = applyWebCredentials(request, creds);
      void this.admit(route, full, remoteAddress).then(
        (admitted) => {
          ws.off('message', onMessage);
          if (ws.readyState !== ws.OPEN) {
            // The client left while it was checked: no session, no exec.
            this.deps.log.info('upgrade abandoned', { request: full.requestId, route, remote: remoteAddress, app: full.app });
            return;
          }
          try {
            this.deps.onAdmitted(route, this.session(route, { ws, socket, request: full, ...admitted, remoteAddress, clientCert, framing: jsonFraming, pending }));
          } catch (err) {
            this.deps.fault?.('upgrade', err, { request: full.requestId });
            refuseWeb(new EntryError('ENTRY_INTERNAL', `request ${full.requestId}`));
          }
        },
        (err: unknown) => refuseWeb(this.refusal(err, route, full, remoteAddress)),
      );
    };
    this.awaitingCredentials.add(refuseWeb);
    ws.on('message', onMessage);
    ws.on('close', () => {
      clearTimeout(timer);
      uncap();
      this.awaitingCredentials.delete(refuseWeb);
    });
  }

  /** The session's terminal, made here so that the session layer never sees the socket. */
  private session(route: Route, a: Admitted): AdmittedSession {
    const { request } = a;
    return {
      sessionId: randomUUID(),
      // /attach relays a container's own output: raw, never cut on UTF-8 boundaries.
      terminal: this.terminal(a.ws, a.socket, request.protocol2, route === 'enter', a.framing, a.pending),
      protocol2: request.protocol2,
      termType: request.termType,
      requestId: request.requestId,
      resume: request.resume,
      via: request.via,
      identity: a.identity,
      target: a.target,
      container: a.container,
      remoteAddress: a.remoteAddress,
      clientCert: a.clientCert,
    };
  }

  private terminal(ws: WebSocket, socket: Duplex, protocol2: boolean, tty: boolean, framing: Framing, pending: Array<[Buffer, boolean]>): WsTerminal {
    const { limits } = this.deps.config;
    return new WsTerminal(
      ws,
      {
        protocol2,
        tty,
        framing,
        maxFrameBytes: limits.maxFrameBytes,
        socket: socket as Socket,
        peerTimeoutMs: limits.peerTimeoutMs,
        stallTimeoutMs: limits.stallTimeoutMs,
        tcpKeepAliveMs: limits.tcpKeepAliveMs,
        ...(this.deps.fault ? { fault: this.deps.fault } : {}),
      },
      pending,
    );
  }

  private refusal(err: unknown, route: Route | 'watch', request: UpgradeRequest, remote: string): EntryError {
    if (!isEntryError(err)) this.deps.fault?.('upgrade', err, { request: request.requestId, route });
    const error = isEntryError(err) ? err : new EntryError('ENTRY_INTERNAL', `request ${request.requestId}`, { cause: err });
    this.deps.log.info('upgrade refused', { request: request.requestId, route, code: error.code, reason: error.message, remote, app: request.app });
    this.deps.onRefused?.({ code: error.code, reason: error.message, source: remote, ...(request.app ? { app: request.app, proc: request.proc, instance: request.instance === undefined ? undefined : String(request.instance) } : {}) });
    // A ticket travels in the URL, where proxies log it: one whose upgrade was refused before it
    // was redeemed (a bad target, a full or draining broker) is spent all the same.
    if (request.ticket) void this.deps.tickets.spend(request.ticket).catch((e: unknown) => this.deps.log.warn('ticket of a refused upgrade not spent', { request: request.requestId, error: e as Error }));
    return error;
  }

  private async admit(route: Route, request: UpgradeRequest, remote: string): Promise<{ identity: Identity; target: Target; container: ResolvedTarget }> {
    // Only an exec session is resumed (taking over one already counted); /attach starts anew.
    this.deps.admissible(route === 'enter' && Boolean(request.protocol2 && request.resume));
    const progress: { stage: AdmissionStage } = { stage: 'authenticating' };
    return this.underWay(withinAdmission(this.checks(request, remote, progress), this.deps.config.limits.handshakeTimeoutMs, () => progress.stage));
  }

  /** `work` as an admission under way: tracked until it settles, and refused at once by a drain. */
  private underWay<T>(work: Promise<T>): Promise<T> {
    const raced = Promise.race([work, this.drainBegun]);
    this.underWayNow.add(raced);
    const settled = () => this.underWayNow.delete(raced);
    raced.then(settled, settled);
    return raced;
  }

  /**
   * The gateway's part of a drain: admissions under way are refused with ENTRY_DRAINING (what
   * they were waiting for may still answer; nothing comes of it), as are web-mode clients still
   * to send their credentials. Resolves once every one of them has been answered, so that the
   * broker does not exit under a client that would get no reason.
   */
  async drain(): Promise<void> {
    const draining = new EntryError('ENTRY_DRAINING');
    this.beginDrain(draining);
    for (const refuseWaiting of [...this.awaitingCredentials]) refuseWaiting(draining);
    while (this.underWayNow.size > 0) await Promise.allSettled([...this.underWayNow]);
  }

  private async checks(request: UpgradeRequest, remote: string, progress: { stage: AdmissionStage }): Promise<{ identity: Identity; target: Target; container: ResolvedTarget }> {
    // Order matters: nothing about the target is looked up before the caller is known.
    const target = validateTarget(request.app, request.proc, request.instance);
    progress.stage = request.ticket ? 'redeeming' : 'authenticating';
    const ticket = request.ticket;
    const identity = ticket ? await this.deps.guard.redeem(() => this.deps.tickets.redeem(ticket, target), remote) : await this.deps.guard.authenticate(request.token, remote);
    this.deps.policy.check(identity, target.app);
    progress.stage = 'resolving';
    const container = await this.deps.resolver.resolve(target);
    // Again against the app the container's own labels name: no alias may reach a denied app.
    this.deps.policy.check(identity, container.app ?? target.app);
    return { identity, target, container };
  }

  private originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    // Non-browser clients send no Origin; browsers always do.
    if (!origin) return true;
    if (this.deps.config.allowedOrigins.includes(origin)) return true;
    try {
      // Host read as a URL of the Origin's scheme: case and a default port written out do not
      // make the same origin another.
      const page = new URL(origin);
      return page.host === new URL(`${page.protocol}//${req.headers.host ?? ''}`).host;
    } catch {
      return false;
    }
  }

  /** Bytes queued on the open WebSockets: in all, and on the fullest one. */
  bufferedBytes(): { total: number; max: number } {
    let total = 0;
    let max = 0;
    for (const ws of this.wss.clients) {
      total += ws.bufferedAmount;
      max = Math.max(max, ws.bufferedAmount);
    }
    return { total, max };
  }

  close(): void {
    this.wss.close();
  }
}

/** What an admission was waiting for, to name what hung when it takes too long. */
type AdmissionStage = 'authenticating' | 'redeeming' | 'locating' | 'resolving';

/** Each stage's own failure: whoever did not answer is named, not always the engine. */
function admissionTimeout(stage: AdmissionStage, ms: number): EntryError {
  if (stage === 'authenticating') return new EntryError('ENTRY_AUTH_UNAVAILABLE', `checking the token took longer than ${ms} ms (key server or shared store not answering)`);
  if (stage === 'redeeming') return new EntryError('ENTRY_STORE_UNAVAILABLE', `redeeming the ticket took longer than ${ms} ms`);
  if (stage === 'locating') return new EntryError('ENTRY_STORE_UNAVAILABLE', `finding the broker holding the session took longer than ${ms} ms`);
  return new EntryError('ENTRY_DOCKER_UNAVAILABLE', `finding the target took longer than ${ms} ms`);
}

/** Bounds an admission check: a hung key server, store or engine must not hold sockets forever. */
function withinAdmission<T>(work: Promise<T>, ms: number, stage: () => AdmissionStage): Promise<T> {
  return withTimeout(work, ms, () => admissionTimeout(stage(), ms));
}

/**
 * Most read from a web-mode client before its credentials message has come: a token of a few
 * KiB and three names. Without it ws gathers up to its maxPayload (4 × --max-frame) from each
 * caller not yet known.
 */
export const CREDENTIALS_MAX_BYTES = 64 * 1024;
/**
 * Most read from a refused client while its close frame is awaited (it may still be sending);
 * past it nothing more is read, and the connection ends with the wait for the close.
 */
export const REFUSED_READ_MAX_BYTES = 64 * 1024;
/** How long a refused client has to answer the close. */
const REFUSED_CLOSE_WAIT_MS = 5_000;

/**
 * Calls `over` once more than `max` bytes have come in on `socket` (ws reads the same chunks);
 * returns the function that lifts the cap.
 */
function capIncoming(socket: Duplex, max: number, over: () => void): () => void {
  let seen = 0;
  // ws reads first and hands a message on within the same 'data' event, and an emit calls the
  // listeners it had when it began: a cap lifted by that message must not count its chunk.
  let lifted = false;
  const onData = (chunk: Buffer) => {
    if (lifted) return;
    seen += chunk.length;
    if (seen <= max) return;
    lifted = true;
    socket.off('data', onData);
    over();
  };
  socket.on('data', onData);
  return () => {
    lifted = true;
    socket.off('data', onData);
  };
}

/** Tells a refused client why, the way original clients expect: a red CLOSE line. */
export function refuse(ws: WebSocket, socket: Duplex, error: EntryError, protocol2: boolean, framing: Framing = protobufFraming): void {
  if (ws.readyState !== ws.OPEN) return;
  const frame = framing.encode(ResponseType.CLOSE, utf8(closeLine({ kind: 'failed', error })), protocol2 ? error.code : '');
  ws.send(frame, { binary: true });
  ws.close(error.closeCode, error.code);
  const timer = setTimeout(() => ws.terminate(), REFUSED_CLOSE_WAIT_MS);
  timer.unref();
  // Paused, not cut: the client still reads the CLOSE line and the close frame.
  const uncap = capIncoming(socket, REFUSED_READ_MAX_BYTES, () => socket.pause());
  ws.once('close', () => {
    clearTimeout(timer);
    uncap();
  });
}

function rejectHttp(socket: Duplex, error: Pick<EntryError, 'status' | 'code' | 'message'>, request?: string, headers: Record<string, string> = {}): void {
  socket.end(rawAnswer(error, request, headers));
}

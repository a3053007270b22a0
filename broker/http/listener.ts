import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { FaultReporter } from '../fault.js';
import type { Logger } from '../log.js';
import type { TrustedProxies } from '../transport/client-address.js';
import type { ListenerCertificates } from '../transport/tls.js';
import { logAccess } from './access-log.js';
import { httpBoundary, upgradeBoundary } from './boundary.js';
import { answerClientErrors, refuseConnect, refuseHostless } from './client-error.js';
import { answerAsPlainRequest, isWebSocketUpgrade } from './foreign-upgrade.js';
import { requestId } from './request-id.js';

export interface ListenerOptions {
  host: string;
  port: number;
  /** Headers (upgrades included) must arrive within this: slow-loris protection. */
  handshakeTimeoutMs: number;
  /** An API body must arrive within this once its headers have (answered by the API as 408). */
  bodyTimeoutMs: number;
  /** TLS on the listener; undefined: plain HTTP. */
  certificates: ListenerCertificates | undefined;
  proxies: TrustedProxies;
  log: Logger;
  fault: FaultReporter;
}

/**
 * The broker's one listener: every request gets its id and its access line, runs inside the
 * fault boundary, and sees the client address a trusted proxy reports. Resolves once listening.
 */
export async function listen(
  o: ListenerOptions,
  onRequest: (req: IncomingMessage, res: ServerResponse) => Promise<void> | void,
  onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void,
): Promise<Server> {
  // Node checks the two timeouts at this interval.
  const checkEveryMs = Math.min(1_000, o.handshakeTimeoutMs);
  const serverOptions = {
    headersTimeout: o.handshakeTimeoutMs,
    // Node's request timeout counts from the request's start and would cut a body allowed
    // --body-timeout after its headers with a bare 408; it is the backstop behind the API's own
    // timer, which answers first with ENTRY_BODY_TIMEOUT.
    requestTimeout: o.handshakeTimeoutMs + o.bodyTimeoutMs + checkEveryMs,
    connectionsCheckingInterval: checkEveryMs,
    // Refused by `refuseHostless`, with a code.
    requireHostHeader: false,
  };
  const unanswered = new WeakMap<Duplex, ServerResponse[]>();
  const handler = httpBoundary(
    'http',
    (req, res) => {
      if (tooManyWaiting(unanswered, req, res)) return;
      o.proxies.stamp(req);
      res.setHeader('x-request-id', requestId(req));
      logAccess(req, res, o.log);
      if (refuseHostless(req, res)) return;
      return onRequest(req, res);
    },
    o.fault,
  );
  const server: Server = o.certificates
    ? createHttpsServer({ ...serverOptions, ...o.certificates.serverOptions(), handshakeTimeout: o.handshakeTimeoutMs }, handler)
    : createServer(serverOptions, handler);
  if (o.certificates) o.certificates.attach(server as HttpsServer);
  server.on('clientError', answerClientErrors(o.log));
  server.on('connect', upgradeBoundary(refuseConnect(o.log), o.fault));
  server.on(
    'upgrade',
    upgradeBoundary((req, socket, head) => {
      if (!isWebSocketUpgrade(req)) return answerAsPlainRequest(server, req, socket, head, unanswered.get(socket) ?? []);
      o.proxies.stamp(req);
      onUpgrade(req, socket, head);
    }, o.fault),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      server.on('error', acceptFailures(o.log));
      resolve();
    });
  });
  return server;
}

/**
 * Requests one connection may have waiting for their answers (HTTP/1.1 pipelining). Browsers and
 * HTTP libraries send one at a time. Node parses every request in what it has read (64 KiB: a
 * thousand short ones) and starts each answer, which then waits, written, for the ones before it;
 * a connection that sends more than this ahead is closed rather than served without bound.
 */
export const MAX_PIPELINED_REQUESTS = 64;

/** Keeps each connection's answers not yet finished, in order; closes one with too many. */
function tooManyWaiting(unanswered: WeakMap<Duplex, ServerResponse[]>, req: IncomingMessage, res: ServerResponse): boolean {
  const socket = req.socket;
  let waiting = unanswered.get(socket);
  if (!waiting) unanswered.set(socket, (waiting = []));
  if (waiting.length >= MAX_PIPELINED_REQUESTS) {
    socket.destroy();
    return true;
  }
  waiting.push(res);
  const list = waiting;
  const answered = () => {
    const at = list.indexOf(res);
    if (at >= 0) list.splice(at, 1);
  };
  res.once('finish', answered);
  res.once('close', answered);
  return false;
}

/** At most one log line per this long about connections the listener could not accept. */
const ACCEPT_FAILURE_LOG_MS = 10_000;

/**
 * A listening server's 'error': a connection it could not accept (EMFILE, ENFILE: out of file
 * descriptors). Node keeps listening; with no listener the error would end the broker and every
 * session with it. Logged, a line per ACCEPT_FAILURE_LOG_MS at most, with how many there were.
 */
export function acceptFailures(log: Logger): (err: Error & { code?: string }) => void {
  let loggedAt = 0;
  let unlogged = 0;
  return (err) => {
    unlogged++;
    const now = performance.now();
    if (loggedAt !== 0 && now - loggedAt < ACCEPT_FAILURE_LOG_MS) return;
    loggedAt = now;
    log.warn('could not accept connections', { code: err.code, error: err, failures: unlogged });
    unlogged = 0;
  };
}

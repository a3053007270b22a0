import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import { clientAddress, normalizeAddress } from '../transport/client-address.js';
import { loggedUrlPath } from './refused-request.js';
import { requestId } from './request-id.js';

/** Paths polled every few seconds by probes and scrapers: logged at debug level so they do not drown the log. */
const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * One log line per answered request. Everything it prints is taken when the request arrives:
 * by the time the answer is finished the socket may already be destroyed (a refused body is
 * answered early and the connection cut), and `req.socket` is then gone.
 */
export function logAccess(req: IncomingMessage, res: ServerResponse, log: Logger): void {
  const request = requestId(req);
  const method = req.method;
  // Cut as a refused request's is: a path can be as long as the URL limit (64 KiB), all logged.
  const path = loggedUrlPath(req.url);
  // The client as a trusted proxy reports it (as sessions, audit and the failure limits take
  // it), and the proxy itself when there is one.
  const remote = clientAddress(req);
  const socketAddress = req.socket?.remoteAddress;
  const peer = socketAddress !== undefined && normalizeAddress(socketAddress) !== remote ? { peer: normalizeAddress(socketAddress) } : {};
  const started = performance.now();
  const level = PROBES.has(path) ? 'debug' : 'info';
  let logged = false;
  const line = (extra: Record<string, unknown>) => {
    if (logged) return;
    logged = true;
    log[level]('http', { request, method, path, status: res.statusCode, ms: Math.round(performance.now() - started), remote, ...peer, ...extra });
  };
  res.once('finish', () => line({}));
  // A client that left before the answer was complete: still one line, marked.
  res.once('close', () => line({ aborted: true }));
}

import type { IncomingMessage } from 'node:http';
import { bearerOf } from '../auth/bearer.js';
import { requestId } from '../http/request-id.js';

/** Everything the upgrade request says about who is calling and what they want. */
export interface UpgradeRequest {
  token: string | undefined;
  /** One-time ticket from POST /api/tickets (browsers). */
  ticket: string | undefined;
  app: string | undefined;
  proc: string | undefined;
  /** A string from headers or the query; web mode's first message may give a JSON number. */
  instance: string | number | undefined;
  termType: string;
  /** Protocol 2: header `entry-protocol: 2` or subprotocol `entry.v1`. */
  protocol2: boolean;
  /** The original `?method=web` mode: JSON messages, credentials in the first message. */
  webMode: boolean;
  /** The upgrade request's id in the logs. */
  requestId: string;
  /** Protocol 2: the session to resume (header `entry-resume`, query `resume`). */
  resume: string | undefined;
  /** The broker that handed this upgrade on (a resume that reached it first), when believed. */
  via?: string;
}

export const SUBPROTOCOL = 'entry.v1';
export const BEARER_SUBPROTOCOL_PREFIX = 'entry.bearer.';
const DEFAULT_TERM = 'xterm-256color';

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function subprotocols(req: IncomingMessage): string[] {
  return (header(req, 'sec-websocket-protocol') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function tokenFromSubprotocol(protocols: string[]): string | undefined {
  const p = protocols.find((s) => s.startsWith(BEARER_SUBPROTOCOL_PREFIX));
  if (!p) return undefined;
  const encoded = p.slice(BEARER_SUBPROTOCOL_PREFIX.length);
  return /^[A-Za-z0-9_-]+$/.test(encoded) ? Buffer.from(encoded, 'base64url').toString('utf8') : '';
}

/**
 * Reads the request: the original headers (access-token, app-name, proc-name, instance-no,
 * term-type), `Authorization: Bearer`, and for browsers the query (app, proc, instance,
 * ticket) and the token in the subprotocol list. Tokens are never taken from the query string:
 * URLs end up in proxy logs.
 */
export function readUpgradeRequest(req: IncomingMessage): UpgradeRequest {
  const url = new URL(req.url ?? '/', 'http://entry.invalid');
  const q = url.searchParams;
  const protocols = subprotocols(req);
  let token = header(req, 'access-token');
  const auth = header(req, 'authorization');
  if (!token) token = bearerOf(auth);
  if (!token) token = tokenFromSubprotocol(protocols);
  const term = header(req, 'term-type') ?? q.get('term') ?? undefined;
  return {
    token,
    ticket: q.get('ticket') ?? undefined,
    app: header(req, 'app-name') ?? q.get('app') ?? undefined,
    proc: header(req, 'proc-name') ?? q.get('proc') ?? undefined,
    instance: header(req, 'instance-no') ?? q.get('instance') ?? undefined,
    termType: term && /^[A-Za-z0-9._+-]{1,64}$/.test(term) ? term : DEFAULT_TERM,
    protocol2: header(req, 'entry-protocol') === '2' || protocols.includes(SUBPROTOCOL),
    webMode: q.get('method') === 'web',
    requestId: requestId(req),
    resume: header(req, 'entry-resume') ?? q.get('resume') ?? undefined,
  };
}

/** Web mode: the first message carries what headers carry otherwise. */
export function applyWebCredentials(request: UpgradeRequest, first: unknown): UpgradeRequest {
  const o = (first && typeof first === 'object' ? first : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);
  return {
    ...request,
    token: str(o['access_token']) ?? request.token,
    app: str(o['app_name']) ?? request.app,
    proc: str(o['proc_name']) ?? request.proc,
    // Left a number for validateTarget, which takes only a whole one.
    instance: typeof o['instance_no'] === 'number' ? o['instance_no'] : (str(o['instance_no']) ?? request.instance),
  };
}

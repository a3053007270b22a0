import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AuthGuard, rateLimited } from '../auth/guard.js';
import type { Identity } from '../auth/identity.js';
import type { AccessPolicy } from '../auth/policy.js';
import type { TicketStore } from '../auth/tickets.js';
import type { Backends } from '../backend/backends.js';
import { validateTarget } from '../backend/target.js';
import { EntryError, isEntryError } from '../errors.js';
import { storeCall } from '../store/store-call.js';
import type { SessionRecord, Store } from '../store/store.js';
import type { AuditTrail } from '../audit/audit-trail.js';
import type { Recorder } from '../recording/recorder.js';
import { clientAddress } from '../transport/client-address.js';
import { killSession, listSessions, revoke } from './admin.js';
import { queryAudit, sendRecording } from './audit-routes.js';
import type { ContainerInfo, WhoAmI } from './api-types.js';
import { BodyAborted, type BodySpec, JSON_BODY, NO_BODY, parseJsonObject, readBody, refuseBody } from './body.js';
import { bearerToken, sendError, sendJson } from './respond.js';

export interface ApiDeps {
  guard: AuthGuard;
  policy: AccessPolicy;
  tickets: TicketStore;
  backends: Backends;
  store: Store;
  audit: AuditTrail;
  recorder: Recorder | undefined;
  /** The listed sessions with this broker's own counts as of now (the stored ones lag a heartbeat). */
  currentSessions?: (records: SessionRecord[]) => SessionRecord[];
  /** How long a request body may take to arrive (--body-timeout). */
  bodyTimeoutMs: number;
  /** Seconds past `exp` a token is still taken (--clock-tolerance): a revocation lasts that long too. */
  clockToleranceSec: number;
  /** Told of each call the policy refused (403), for the metrics. */
  onForbidden?: (code: string) => void;
}

/** What a handler gets: the path parameter and the body, already read within the route's limits. */
export interface ApiCall {
  param: string;
  body: Buffer;
}

type Handler = (req: IncomingMessage, res: ServerResponse, identity: Identity, deps: ApiDeps, call: ApiCall) => Promise<void> | void;

interface Route {
  method: string;
  path: RegExp;
  /** The body this route accepts; anything else is refused before authentication. */
  body: BodySpec;
  handler: Handler;
}

/**
 * The JSON API, every call authenticated with `Authorization: Bearer <token>`:
 *   POST   /api/tickets        {app, proc, instance} → {ticket, expiresAt}
 *   GET    /api/containers     → {containers: [{app, proc, instance, state, image, name, created, reason?}]}
 *   GET    /api/whoami         → {user, apps, roles, admin, expiresAt}
 *   GET    /api/sessions       (admin) → {sessions: [{id, user, app, proc, instance, …}]}
 *   DELETE /api/sessions/:id   (admin) → 202 {id, broker}
 *   POST   /api/revocations    (admin) {jti, expiresAt} | {user, before} → 204
 *   GET    /api/audit          (admin) ?user&app&type&session&q&since&until&limit&cursor → {events, next}
 *   GET    /api/sessions/:id/recording (admin) → the asciicast v2 file
 */
export const ROUTES: readonly Route[] = [
  { method: 'POST', path: /^\/api\/tickets$/, body: JSON_BODY, handler: (_req, res, id, deps, call) => issueTicket(res, id, deps, call.body) },
  { method: 'GET', path: /^\/api\/containers$/, body: NO_BODY, handler: (_req, res, id, deps) => containers(res, id, deps) },
  { method: 'GET', path: /^\/api\/whoami$/, body: NO_BODY, handler: (_req, res, id) => whoami(res, id) },
  { method: 'GET', path: /^\/api\/sessions$/, body: NO_BODY, handler: (_req, res, id, deps) => listSessions(res, id, deps.store, deps.currentSessions) },
  { method: 'DELETE', path: /^\/api\/sessions\/([A-Za-z0-9-]{1,64})$/, body: NO_BODY, handler: (_req, res, id, deps, call) => killSession(res, id, deps.store, call.param) },
  { method: 'POST', path: /^\/api\/revocations$/, body: JSON_BODY, handler: (_req, res, id, deps, call) => revoke(res, id, deps, call.body) },
  { method: 'GET', path: /^\/api\/audit$/, body: NO_BODY, handler: (req, res, id, deps) => queryAudit(req, res, id, deps.store) },
  { method: 'GET', path: /^\/api\/sessions\/([A-Za-z0-9-]{1,64})\/recording$/, body: NO_BODY, handler: (req, res, id, deps, call) => sendRecording(req, res, id, deps, call.param) },
];

/**
 * Tickets one user may be issued per minute, across brokers. Each socket a browser opens takes
 * one, and an embedded terminal trying to resume takes one per try, at most one a second
 * (client/web/terminal.ts): about 63 in a minute of retrying. Ten terminals doing that at once
 * is 600. That leaves a user at most 300 live tickets (30 s each), so no one caller can fill the
 * memory store's 100,000 or grow Redis without bound.
 */
export const TICKETS_PER_USER_PER_MINUTE = 600;
const TICKET_RATE_WINDOW_MS = 60_000;

/** Refusals of the body: answered, the rest of the body dropped, then the connection closed. */
const REFUSING_BODY = new Set(['ENTRY_BODY_TOO_LARGE', 'ENTRY_UNSUPPORTED_MEDIA_TYPE', 'ENTRY_BODY_TIMEOUT']);

/** Answers an /api request. Returns false when the path is not an API path. */
export async function handleApi(req: IncomingMessage, res: ServerResponse, path: string, deps: ApiDeps): Promise<boolean> {
  if (!path.startsWith('/api/')) return false;
  const matches = ROUTES.filter((r) => r.path.test(path));
  // HEAD is GET without the body: Node leaves the body out of a HEAD answer.
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  const route = matches.find((r) => r.method === method);
  try {
    if (!route) {
      if (matches.length > 0) throw new EntryError('ENTRY_METHOD_NOT_ALLOWED', `${req.method} not allowed on ${path}`);
      sendJson(res, 404, { error: 'ENTRY_NOT_FOUND', message: `no such API: ${path}` });
      return true;
    }
    // The body is judged first, by the route's own limits: the same answer with or without a
    // token, and no store call for a request that will be refused anyway.
    const body = await readBody(req, route.body, deps.bodyTimeoutMs);
    const identity = await deps.guard.authenticate(bearerToken(req), clientAddress(req));
    await route.handler(req, res, identity, deps, { param: route.path.exec(path)?.[1] ?? '', body });
  } catch (err) {
    if (err instanceof BodyAborted) {
      res.destroy();
      return true;
    }
    // Anything that is not a refusal is a fault: the boundary around the request logs it.
    if (!isEntryError(err)) throw err;
    if (matches.length > 0 && !route) res.setHeader('allow', matches.flatMap((r) => (r.method === 'GET' ? ['GET', 'HEAD'] : [r.method])).join(', '));
    if (err.status === 403) deps.onForbidden?.(err.code);
    if (REFUSING_BODY.has(err.code)) refuseBody(req, res, err, deps.bodyTimeoutMs);
    else sendError(res, err);
  }
  return true;
}

async function issueTicket(res: ServerResponse, identity: Identity, deps: ApiDeps, raw: Buffer): Promise<void> {
  const body = parseJsonObject(raw);
  const target = validateTarget(body?.['app'], body?.['proc'], body?.['instance']);
  // Checked now and again when the ticket is used: a refused user gets no ticket at all.
  deps.policy.check(identity, target.app);
  const d = await storeCall(() => deps.store.hit(`tickets:user:${identity.user}`, TICKETS_PER_USER_PER_MINUTE, TICKET_RATE_WINDOW_MS));
  if (!d.allowed) throw rateLimited(d.retryAfterMs, `this user was issued ${TICKETS_PER_USER_PER_MINUTE} tickets within a minute`);
  const issued = await deps.tickets.issue(identity, target);
  sendJson(res, 200, { ticket: issued.ticket, expiresAt: issued.expiresAt.toISOString() });
}

async function containers(res: ServerResponse, identity: Identity, deps: ApiDeps): Promise<void> {
  const all = await deps.backends.list();
  const containers: ContainerInfo[] = all.filter((t) => deps.policy.allows(identity, t.app));
  sendJson(res, 200, { containers });
}

function whoami(res: ServerResponse, identity: Identity): void {
  const me: WhoAmI = {
    user: identity.user,
    apps: identity.apps,
    roles: identity.roles,
    admin: identity.admin,
    expiresAt: new Date(identity.expiresAt).toISOString(),
  };
  sendJson(res, 200, me);
}

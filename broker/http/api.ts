import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuthGuard } from '../auth/guard.js';
import type { Identity } from '../auth/identity.js';
import type { AccessPolicy } from '../auth/policy.js';
import type { TicketStore } from '../auth/tickets.js';
import type { DockerHost } from '../docker/hosts.js';
import { listTargets, validateTarget } from '../docker/resolver.js';
import { EntryError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { AuditTrail } from '../audit/audit-trail.js';
import type { Recorder } from '../recording/recorder.js';
import { clientAddress } from '../transport/client-address.js';
import { killSession, listSessions, revoke } from './admin.js';
import { queryAudit, sendRecording } from './audit-routes.js';
import { bearerToken, readJson, sendError, sendJson } from './respond.js';

export interface ApiDeps {
  guard: AuthGuard;
  policy: AccessPolicy;
  tickets: TicketStore;
  hosts: readonly DockerHost[];
  store: Store;
  audit: AuditTrail;
  recorder: Recorder | undefined;
}

type Handler = (req: IncomingMessage, res: ServerResponse, identity: Identity, deps: ApiDeps, param: string) => Promise<void> | void;

/**
 * The JSON API, every call authenticated with `Authorization: Bearer <token>`:
 *   POST   /api/tickets        {app, proc, instance} → {ticket, expiresAt}
 *   GET    /api/containers     → {containers: [{app, proc, instance, state, image, name, created}]}
 *   GET    /api/whoami         → {user, apps, roles, admin, expiresAt}
 *   GET    /api/sessions       (admin) → {sessions: [{id, user, app, proc, instance, …}]}
 *   DELETE /api/sessions/:id   (admin) → 202 {id, broker}
 *   POST   /api/revocations    (admin) {jti, expiresAt} | {user, before} → 204
 *   GET    /api/audit          (admin) ?user&app&type&session&q&since&until&limit&cursor → {events, next}
 *   GET    /api/sessions/:id/recording (admin) → the asciicast v2 file
 */
const ROUTES: Array<{ method: string; path: RegExp; handler: Handler }> = [
  { method: 'POST', path: /^\/api\/tickets$/, handler: (req, res, id, deps) => issueTicket(req, res, id, deps) },
  { method: 'GET', path: /^\/api\/containers$/, handler: (_req, res, id, deps) => containers(res, id, deps) },
  { method: 'GET', path: /^\/api\/whoami$/, handler: (_req, res, id) => whoami(res, id) },
  { method: 'GET', path: /^\/api\/sessions$/, handler: (_req, res, id, deps) => listSessions(res, id, deps.store) },
  { method: 'DELETE', path: /^\/api\/sessions\/([A-Za-z0-9-]{1,64})$/, handler: (_req, res, id, deps, param) => killSession(res, id, deps.store, param) },
  { method: 'POST', path: /^\/api\/revocations$/, handler: (req, res, id, deps) => revoke(req, res, id, deps.store) },
  { method: 'GET', path: /^\/api\/audit$/, handler: (req, res, id, deps) => queryAudit(req, res, id, deps.store) },
  { method: 'GET', path: /^\/api\/sessions\/([A-Za-z0-9-]{1,64})\/recording$/, handler: (_req, res, id, deps, param) => sendRecording(res, id, deps.recorder, param) },
];

/** Answers an /api request. Returns false when the path is not an API path. */
export async function handleApi(req: IncomingMessage, res: ServerResponse, path: string, deps: ApiDeps): Promise<boolean> {
  if (!path.startsWith('/api/')) return false;
  const matches = ROUTES.filter((r) => r.path.test(path));
  const route = matches.find((r) => r.method === req.method);
  try {
    if (!route) {
      if (matches.length > 0) throw new EntryError('ENTRY_BAD_REQUEST', `${req.method} not allowed on ${path}`);
      sendJson(res, 404, { error: 'ENTRY_NOT_FOUND', message: `no such API: ${path}` });
      return true;
    }
    const identity = await deps.guard.authenticate(bearerToken(req), clientAddress(req));
    await route.handler(req, res, identity, deps, route.path.exec(path)?.[1] ?? '');
  } catch (err) {
    sendError(res, err);
  }
  return true;
}

async function issueTicket(req: IncomingMessage, res: ServerResponse, identity: Identity, deps: ApiDeps): Promise<void> {
  const body = (await readJson(req)) as Record<string, unknown> | null;
  const instance = body?.['instance'];
  const target = validateTarget(body?.['app'], body?.['proc'], typeof instance === 'number' ? String(instance) : instance);
  // Checked now and again when the ticket is used: a refused user gets no ticket at all.
  deps.policy.check(identity, target.app);
  const issued = await deps.tickets.issue(identity, target);
  sendJson(res, 200, { ticket: issued.ticket, expiresAt: issued.expiresAt.toISOString() });
}

async function containers(res: ServerResponse, identity: Identity, deps: ApiDeps): Promise<void> {
  const all = await listTargets(deps.hosts);
  sendJson(res, 200, { containers: all.filter((t) => deps.policy.allows(identity, t.app)) });
}

function whoami(res: ServerResponse, identity: Identity): void {
  sendJson(res, 200, {
    user: identity.user,
    apps: identity.apps,
    roles: identity.roles,
    admin: identity.admin,
    expiresAt: new Date(identity.expiresAt).toISOString(),
  });
}

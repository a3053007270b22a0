import type { IncomingMessage, ServerResponse } from 'node:http';
import type Docker from 'dockerode';
import type { Identity } from '../auth/identity.js';
import type { AccessPolicy } from '../auth/policy.js';
import type { TicketStore } from '../auth/tickets.js';
import type { TokenVerifier } from '../auth/verifier.js';
import { listTargets, validateTarget } from '../docker/resolver.js';
import { EntryError } from '../errors.js';
import { bearerToken, readJson, sendError, sendJson } from './respond.js';

export interface ApiDeps {
  verifier: TokenVerifier;
  policy: AccessPolicy;
  tickets: TicketStore;
  docker: Docker;
}

/**
 * The JSON API under /api, every call authenticated with `Authorization: Bearer <token>`:
 *   POST /api/tickets     {app, proc, instance} → {ticket, expiresAt}
 *   GET  /api/containers  → {containers: [{app, proc, instance, state, image, name, created}]}
 *   GET  /api/whoami      → {user, apps, roles, admin, expiresAt}
 * Returns false when the path is not an API path.
 */
export async function handleApi(req: IncomingMessage, res: ServerResponse, path: string, deps: ApiDeps): Promise<boolean> {
  const route = `${req.method} ${path}`;
  const known = ['POST /api/tickets', 'GET /api/containers', 'GET /api/whoami'];
  if (!path.startsWith('/api/')) return false;
  try {
    if (!known.includes(route)) {
      if (known.some((k) => k.endsWith(` ${path}`))) throw new EntryError('ENTRY_BAD_REQUEST', `${req.method} not allowed on ${path}`);
      sendJson(res, 404, { error: 'ENTRY_NOT_FOUND', message: `no such API: ${path}` });
      return true;
    }
    const identity = await deps.verifier.verify(bearerToken(req));
    if (route === 'POST /api/tickets') await issueTicket(req, res, identity, deps);
    else if (route === 'GET /api/containers') await containers(res, identity, deps);
    else whoami(res, identity);
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
  const all = await listTargets(deps.docker);
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

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { OidcClientConfig } from '../config/config.js';
import { PACKAGE_VERSION } from '../package-version.js';
import { sendJson, sendMethodNotAllowed } from './respond.js';

/**
 * `GET /api/config`, unauthenticated: what a client needs before it has a token.
 *   {"version": "0.1.0", "oidc": {"issuer", "clientId", "scopes"} | null}
 * Returns false when the request is not for this route.
 */
export function handleConfigRoute(req: IncomingMessage, res: ServerResponse, path: string, oidc: OidcClientConfig | null | undefined): boolean {
  if (path !== '/api/config') return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendMethodNotAllowed(res, req.method, path, 'GET, HEAD');
    return true;
  }
  sendJson(res, 200, {
    version: PACKAGE_VERSION,
    oidc: oidc ? { issuer: oidc.issuer, clientId: oidc.clientId, scopes: oidc.scopes } : null,
  });
  return true;
}

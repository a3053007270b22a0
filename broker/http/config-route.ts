import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { OidcClientConfig } from '../config/config.js';
import { sendJson, sendMethodNotAllowed } from './respond.js';

/** The package's version, from the nearest package.json above this file (sources or dist/). */
export const BROKER_VERSION = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'entry' && pkg.version) return pkg.version;
      } catch {
        // Not ours; keep looking.
      }
    }
    dir = dirname(dir);
  }
  return 'unknown';
})();

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
    version: BROKER_VERSION,
    oidc: oidc ? { issuer: oidc.issuer, clientId: oidc.clientId, scopes: oidc.scopes } : null,
  });
  return true;
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { OidcClientConfig } from '../config/config.js';
import { type ApiDeps, handleApi } from './api.js';
import { handleConfigRoute } from './config-route.js';
import { EntryError } from '../errors.js';
import { handleHealth, type HealthDeps } from './health-routes.js';
import { sendError, sendJson } from './respond.js';
import { serveStatic } from './static.js';
import { pathTrick, requestUrl } from './request-url.js';

export interface HttpDeps extends HealthDeps {
  /** Set once the broker has its keys; until then the API answers 503. */
  api(): ApiDeps | undefined;
  /** Directory of the built console, served at /. */
  consoleRoot: string;
  /** OIDC login settings for clients, answered by GET /api/config. */
  oidc?: OidcClientConfig | null;
  /** Origins (--allowed-origin) whose pages may call the API and load the embed script. */
  allowedOrigins?: readonly string[];
}

/** Cross-origin access for allowed console origins; answers preflights. True when answered. */
function cors(req: IncomingMessage, res: ServerResponse, path: string, allowed: readonly string[]): boolean {
  const origin = req.headers.origin;
  if (!origin || !allowed.includes(origin) || !(path.startsWith('/api/') || path === '/entry-terminal.js')) return false;
  res.setHeader('access-control-allow-origin', origin);
  res.setHeader('vary', 'Origin');
  if (req.method !== 'OPTIONS') return false;
  res.writeHead(204, {
    'access-control-allow-methods': 'GET, POST, DELETE',
    'access-control-allow-headers': 'authorization, content-type',
    'access-control-max-age': '600',
  });
  res.end();
  return true;
}

/** Plain HTTP requests: health, readiness, the JSON API and the console. */
export function createRequestHandler(deps: HttpDeps) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = requestUrl(req);
    if (!url) {
      sendJson(res, 400, { error: 'ENTRY_BAD_REQUEST', message: 'the request target is not a path' });
      return;
    }
    const trick = pathTrick(req);
    if (trick) {
      sendError(res, trick);
      return;
    }
    const path = url.pathname;
    if (cors(req, res, path, deps.allowedOrigins ?? [])) return;
    if (await handleHealth(req, res, url, deps)) return;
    if (path === '/enter' || path === '/attach' || path === '/watch') {
      sendError(res, new EntryError('ENTRY_UPGRADE_REQUIRED'), { upgrade: 'websocket' });
      return;
    }
    if (handleConfigRoute(req, res, path, deps.oidc)) return;
    const api = deps.api();
    if (path.startsWith('/api/')) {
      // Set before the listener reads its first request (EntryBroker.start).
      if (!api) sendError(res, new EntryError('ENTRY_INTERNAL', 'the API is not set up'));
      else await handleApi(req, res, path, api);
      return;
    }
    if (serveStatic(req, res, path, deps.consoleRoot)) return;
    sendJson(res, 404, { error: 'ENTRY_NOT_FOUND', message: `not found: ${path}` });
  };
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerOf } from '../auth/bearer.js';
import { EntryError, isEntryError } from '../errors.js';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  writeJson(res, status, body, headers);
  res.end();
}

/**
 * Writes a whole JSON answer (its length declared) but leaves the response open: for an answer
 * the client must be able to read before the server is done with the request.
 */
export function writeJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), 'cache-control': 'no-store', ...headers });
  res.write(text);
}

/** An error as JSON `{error, message}` with the registry's HTTP status. */
export function sendError(res: ServerResponse, err: unknown, extraHeaders: Record<string, string> = {}): void {
  writeError(res, err, extraHeaders);
  res.end();
}

/** `sendError` without ending the response (see `writeJson`). */
export function writeError(res: ServerResponse, err: unknown, extraHeaders: Record<string, string> = {}): void {
  const e = isEntryError(err) ? err : new EntryError('ENTRY_INTERNAL');
  const headers: Record<string, string> = { ...extraHeaders };
  if (e.status === 401) headers['www-authenticate'] = 'Bearer';
  if (e.retryAfterSec) headers['retry-after'] = String(e.retryAfterSec);
  writeJson(res, e.status, { error: e.code, message: e.message }, headers);
}

/** A method `path` does not take: 405 with the methods it does. */
export function sendMethodNotAllowed(res: ServerResponse, method: string | undefined, path: string, allow: string): void {
  sendError(res, new EntryError('ENTRY_METHOD_NOT_ALLOWED', `${method} not allowed on ${path}`), { allow });
}

/** The API's credential: `Authorization: Bearer`, else the `access-token` header the upgrade takes. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const bearer = bearerOf(req.headers.authorization);
  if (bearer) return bearer;
  const header = req.headers['access-token'];
  return typeof header === 'string' && header !== '' ? header : undefined;
}

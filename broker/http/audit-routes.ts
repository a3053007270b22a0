import { statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditQuery } from '../audit/events.js';
import type { Identity } from '../auth/identity.js';
import { storeCall } from '../store/store-call.js';
import { EntryError } from '../errors.js';
import type { Recorder } from '../recording/recorder.js';
import type { Store } from '../store/store.js';
import { requireAdmin } from './admin.js';
import { sendJson } from './respond.js';
import { sendFile } from './static.js';

/** Largest page of audit events one request returns. */
const MAX_AUDIT_PAGE = 1000;

function time(v: string | null, name: string): number | undefined {
  if (v === null) return undefined;
  const t = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (Number.isNaN(t)) throw new EntryError('ENTRY_BAD_REQUEST', `${name} must be an ISO time or epoch ms`);
  return t;
}

/** GET /api/audit: newest first, filtered, paginated with an opaque `cursor`. */
export async function queryAudit(req: IncomingMessage, res: ServerResponse, identity: Identity, store: Store): Promise<void> {
  requireAdmin(identity);
  const q = new URL(req.url ?? '/', 'http://entry.invalid').searchParams;
  const limit = Number(q.get('limit') ?? 100);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_PAGE) throw new EntryError('ENTRY_BAD_REQUEST', `limit must be 1 to ${MAX_AUDIT_PAGE}`);
  const query: AuditQuery = { limit };
  for (const [param, key] of [['user', 'user'], ['app', 'app'], ['type', 'type'], ['session', 'sessionId'], ['q', 'q'], ['cursor', 'cursor']] as const) {
    const v = q.get(param);
    if (v) query[key] = v;
  }
  const since = time(q.get('since'), 'since');
  const until = time(q.get('until'), 'until');
  if (since !== undefined) query.since = since;
  if (until !== undefined) query.until = until;
  const page = await storeCall(() => store.queryAudit(query));
  sendJson(res, 200, { events: page.events, ...(page.next ? { next: page.next } : {}) });
}

/** GET /api/sessions/:id/recording: the .cast file, as asciinema's player opens it. */
export function sendRecording(res: ServerResponse, identity: Identity, recorder: Recorder | undefined, id: string): void {
  requireAdmin(identity);
  const path = recorder?.pathOf(id);
  let size: number;
  try {
    if (!path) throw new Error('recording disabled');
    size = statSync(path).size;
  } catch {
    throw new EntryError('ENTRY_NO_SUCH_SESSION', `no recording of ${id} on this broker`);
  }
  res.writeHead(200, {
    'content-type': 'application/x-asciicast',
    'content-length': String(size),
    'content-disposition': `attachment; filename="${id}.cast"`,
    'cache-control': 'no-store',
  });
  sendFile(path, res);
}

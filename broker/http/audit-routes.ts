import { type FileHandle, open } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditTrail } from '../audit/audit-trail.js';
import { AUDIT_TYPES, type AuditQuery } from '../audit/events.js';
import type { Identity } from '../auth/identity.js';
import { storeCall } from '../store/store-call.js';
import { EntryError } from '../errors.js';
import type { Recorder } from '../recording/recorder.js';
import type { Store } from '../store/store.js';
import { requireAdmin } from './admin.js';
import { requestTime } from './request-time.js';
import { sendJson } from './respond.js';
import { sendStream } from './send-stream.js';
import { clientAddress } from '../transport/client-address.js';

/** Largest page of audit events one request returns. */
const MAX_AUDIT_PAGE = 1000;

const time = (v: string | null, name: string): number | undefined => (v === null ? undefined : requestTime(v, name));

/** The parameters of GET /api/audit: any other (`usr` for `user`) would be ignored, and the page unfiltered. */
const AUDIT_PARAMS: ReadonlySet<string> = new Set(['user', 'app', 'type', 'session', 'q', 'since', 'until', 'limit', 'cursor']);

/** GET /api/audit: newest first, filtered, paginated with an opaque `cursor`. */
export async function queryAudit(req: IncomingMessage, res: ServerResponse, identity: Identity, store: Store): Promise<void> {
  requireAdmin(identity);
  const q = new URL(req.url ?? '/', 'http://entry.invalid').searchParams;
  for (const name of q.keys()) {
    if (!AUDIT_PARAMS.has(name)) throw new EntryError('ENTRY_BAD_REQUEST', `unknown parameter ${JSON.stringify(name)}: the filters are ${[...AUDIT_PARAMS].join(', ')}`);
  }
  const limit = Number(q.get('limit') ?? 100);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_PAGE) throw new EntryError('ENTRY_BAD_REQUEST', `limit must be 1 to ${MAX_AUDIT_PAGE}`);
  const query: AuditQuery = { limit };
  for (const [param, key] of [['user', 'user'], ['app', 'app'], ['type', 'type'], ['session', 'sessionId'], ['q', 'q'], ['cursor', 'cursor']] as const) {
    const v = q.get(param);
    if (v) query[key] = v;
  }
  // A misspelt type (`sesion.start`) would match nothing and look like an empty trail.
  if (query.type !== undefined && !(AUDIT_TYPES as readonly string[]).includes(query.type)) {
    throw new EntryError('ENTRY_BAD_REQUEST', `unknown type ${JSON.stringify(query.type)}: the types are ${AUDIT_TYPES.join(', ')}`);
  }
  const since = time(q.get('since'), 'since');
  const until = time(q.get('until'), 'until');
  if (since !== undefined) query.since = since;
  if (until !== undefined) query.until = until;
  const page = await storeCall(() => store.queryAudit(query));
  sendJson(res, 200, { events: page.events, ...(page.next ? { next: page.next } : {}) });
}

/** GET /api/sessions/:id/recording: the .cast file, as asciinema's player opens it. */
export async function sendRecording(req: IncomingMessage, res: ServerResponse, identity: Identity, deps: { recorder: Recorder | undefined; audit: AuditTrail }, id: string): Promise<void> {
  requireAdmin(identity);
  const path = deps.recorder?.pathOf(id);
  let file: FileHandle;
  try {
    if (!path) throw new Error('recording disabled');
    file = await open(path, 'r');
  } catch {
    throw new EntryError('ENTRY_NO_SUCH_SESSION', `no recording of ${id} on this broker`);
  }
  let length: number;
  try {
    // A live session's recording grows while it is sent: send what it held now, and only whole
    // lines (an event may be half written), so that the body is the length it is said to be.
    length = await completeLength(file, (await file.stat()).size);
  } catch (err) {
    await file.close();
    throw err;
  }
  // Who read what a session showed: the admin, as for a watch.
  deps.audit.record({ type: 'recording.read', sessionId: id, by: identity.user, source: clientAddress(req) });
  res.writeHead(200, {
    'content-type': 'application/x-asciicast',
    'content-length': String(length),
    'content-disposition': `attachment; filename="${id}.cast"`,
    'cache-control': 'no-store',
  });
  if (length === 0) {
    await file.close();
    res.end();
    return;
  }
  sendStream(file.createReadStream({ start: 0, end: length - 1 }), req, res);
}

/** How much of a file's end is read at a time, looking for its last newline. */
const TAIL_READ_BYTES = 64 * 1024;

/** The length of the file's first `size` bytes up to and with their last newline. */
async function completeLength(file: FileHandle, size: number): Promise<number> {
  const buf = Buffer.alloc(Math.min(TAIL_READ_BYTES, size));
  for (let end = size; end > 0; ) {
    const start = Math.max(0, end - buf.length);
    const { bytesRead } = await file.read(buf, 0, end - start, start);
    const newline = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (newline >= 0) return start + newline + 1;
    end = start;
  }
  return 0;
}

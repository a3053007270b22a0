import type { ServerResponse } from 'node:http';
import type { Identity } from '../auth/identity.js';
import { storeCall } from '../store/store-call.js';
import { EntryError } from '../errors.js';
import type { Store } from '../store/store.js';
import { parseJsonObject } from './body.js';
import { sendJson } from './respond.js';

export function requireAdmin(identity: Identity): void {
  if (!identity.admin) throw new EntryError('ENTRY_NOT_ADMIN', `${identity.user} is not an entry-admin`);
}

/** GET /api/sessions: every live session on every broker sharing the store. */
export async function listSessions(res: ServerResponse, identity: Identity, store: Store): Promise<void> {
  requireAdmin(identity);
  const sessions = await storeCall(() => store.listSessions());
  sessions.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  sendJson(res, 200, { sessions });
}

/**
 * DELETE /api/sessions/:id: ends a session wherever it runs. The kill travels over the store's
 * pub/sub to the broker holding it, which closes it with a reason naming the admin and ends
 * its processes.
 */
export async function killSession(res: ServerResponse, identity: Identity, store: Store, id: string): Promise<void> {
  requireAdmin(identity);
  const record = await storeCall(() => store.getSession(id));
  if (!record) throw new EntryError('ENTRY_NO_SUCH_SESSION', id);
  await storeCall(() => store.publish(record.broker, { type: 'kill', sessionId: id, by: identity.user }));
  sendJson(res, 202, { id, broker: record.broker });
}

/** The latest time a Date can hold (ECMA-262: 8.64e15 ms after the epoch). */
const MAX_TIME_MS = 8.64e15;

/**
 * POST /api/revocations: `{"jti", "expiresAt"}` revokes one token until it would have expired;
 * `{"user", "before"}` revokes every token of that user issued before the given time.
 */
export async function revoke(res: ServerResponse, identity: Identity, store: Store, raw: Buffer): Promise<void> {
  requireAdmin(identity);
  const body = parseJsonObject(raw);
  const time = (v: unknown, name: string) => {
    const t = typeof v === 'string' ? Date.parse(v) : typeof v === 'number' ? v : NaN;
    // Within what a Date can hold (and Redis a PXAT): anything else is a mistake, not "forever".
    if (!(t >= 0 && t <= MAX_TIME_MS)) throw new EntryError('ENTRY_BAD_REQUEST', `${name} must be an ISO time or epoch ms`);
    return Math.floor(t);
  };
  if (typeof body?.['jti'] === 'string') {
    const until = body['expiresAt'] === undefined ? Date.now() + 30 * 86_400_000 : time(body['expiresAt'], 'expiresAt');
    await storeCall(() => store.revokeToken(body['jti'] as string, until));
  } else if (typeof body?.['user'] === 'string') {
    const before = body['before'] === undefined ? Date.now() : time(body['before'], 'before');
    await storeCall(() => store.revokeUserBefore(body['user'] as string, before));
  } else {
    throw new EntryError('ENTRY_BAD_REQUEST', 'give {"jti"} or {"user"}');
  }
  res.writeHead(204, { 'cache-control': 'no-store' }).end();
}

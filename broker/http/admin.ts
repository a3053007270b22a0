import type { ServerResponse } from 'node:http';
import type { AuditTrail } from '../audit/audit-trail.js';
import type { Identity } from '../auth/identity.js';
import { storeCall } from '../store/store-call.js';
import { EntryError } from '../errors.js';
import { EVERY_BROKER, type Revocation, type SessionRecord, type Store } from '../store/store.js';
import { parseJsonObject } from './body.js';
import { requestTime } from './request-time.js';
import { sendJson } from './respond.js';

export function requireAdmin(identity: Identity): void {
  if (!identity.admin) throw new EntryError('ENTRY_NOT_ADMIN', `${identity.user} is not an entry-admin`);
}

/** GET /api/sessions: every live session on every broker sharing the store. */
export async function listSessions(res: ServerResponse, identity: Identity, store: Store, current: (records: SessionRecord[]) => SessionRecord[] = (r) => r): Promise<void> {
  requireAdmin(identity);
  const sessions = current(await storeCall(() => store.listSessions()));
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
  const heard = await storeCall(() => store.publish(record.broker, { type: 'kill', sessionId: id, by: identity.user }));
  // Its broker not listening this moment (its link to the store reconnecting): said, not a 202 for nothing.
  if (heard === 0) throw new EntryError('ENTRY_STORE_UNAVAILABLE', `the broker holding session ${id} (${record.broker}) did not hear the kill: try again shortly`);
  sendJson(res, 202, { id, broker: record.broker });
}

/** A jti revoked without `expiresAt` stays revoked this long: past the life of any access token. */
const JTI_REVOCATION_DEFAULT_MS = 30 * 86_400_000;
/**
 * A jti revocation is kept at least this long however soon its token expires: sessions outlive
 * their token, and a broker that missed the revocation's word (its link to the store down) ends
 * them when it finds the revocation in the store. A day covers any outage a broker rides out;
 * revocations are an admin's act, a few a day, so the store keeps few.
 */
const JTI_REVOCATION_KEEP_MS = 86_400_000;

/**
 * POST /api/revocations: `{"jti", "expiresAt"}` revokes one token until it would have expired
 * (its `expiresAt` and the clock tolerance; stored for a day at least, see JTI_REVOCATION_KEEP_MS);
 * `{"user", "before"}` revokes every token of that user issued before the given time. Anything
 * that would revoke nothing (an empty name, a time in seconds, both at once) is refused.
 */
export async function revoke(res: ServerResponse, identity: Identity, deps: { store: Store; audit: AuditTrail; clockToleranceSec: number }, raw: Buffer): Promise<void> {
  requireAdmin(identity);
  const { store } = deps;
  const body = parseJsonObject(raw) ?? {};
  const name = (key: 'jti' | 'user') => {
    const v = body[key];
    if (v !== undefined && (typeof v !== 'string' || v === '')) throw new EntryError('ENTRY_BAD_REQUEST', `${key} must be a non-empty string`);
    return v;
  };
  const jti = name('jti');
  const user = name('user');
  if (jti !== undefined && user !== undefined) throw new EntryError('ENTRY_BAD_REQUEST', 'give {"jti"} or {"user"}, not both');
  let revocation: Revocation;
  if (jti !== undefined) {
    if (body['before'] !== undefined) throw new EntryError('ENTRY_BAD_REQUEST', '"before" goes with "user"; a jti takes "expiresAt"');
    // The token is taken --clock-tolerance past its `exp`: revoked until then, not only until `exp`.
    const until = body['expiresAt'] === undefined ? Date.now() + JTI_REVOCATION_DEFAULT_MS : requestTime(body['expiresAt'], 'expiresAt') + deps.clockToleranceSec * 1000;
    await storeCall(() => store.revokeToken(jti, Math.max(until, Date.now() + JTI_REVOCATION_KEEP_MS)));
    revocation = { jti };
    deps.audit.record({ type: 'token.revoke', by: identity.user, jti, until: new Date(until).toISOString() });
  } else if (user !== undefined) {
    if (body['expiresAt'] !== undefined) throw new EntryError('ENTRY_BAD_REQUEST', '"expiresAt" goes with "jti"; a user takes "before"');
    const before = body['before'] === undefined ? Date.now() : requestTime(body['before'], 'before');
    await storeCall(() => store.revokeUserBefore(user, before));
    revocation = { user, before };
    deps.audit.record({ type: 'token.revoke', by: identity.user, user, before: new Date(before).toISOString() });
  } else {
    throw new EntryError('ENTRY_BAD_REQUEST', 'give {"jti"} or {"user"}');
  }
  // Sessions already open with a token it covers end too: every broker is told, those still
  // opening a session the registry does not list yet included.
  try {
    await storeCall(() => store.publish(EVERY_BROKER, { type: 'revoke', by: identity.user, revocation }));
  } catch (err) {
    throw new EntryError('ENTRY_STORE_UNAVAILABLE', 'the revocation is stored, but the brokers could not be told to end the sessions open with it: send it again', { cause: err });
  }
  res.writeHead(204, { 'cache-control': 'no-store' }).end();
}

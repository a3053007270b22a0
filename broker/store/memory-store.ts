import { AUDIT_CLOCK_SLACK_MS, type AuditEvent, type AuditPage, type AuditQuery, matches } from '../audit/events.js';
import { EntryError } from '../errors.js';
import { entryPlace, placeKey } from '../ledger/session-ledger.js';
import type { ControlMessage, RateDecision, SessionRecord, Store } from './store.js';

/** Bound on tickets and rate-limit windows kept, so no caller can grow memory without limit. */
const MAX_ENTRIES = 100_000;
/** Least time between two O(n) sweeps of a full table, so a flood cannot make every insert O(n). */
const FULL_SWEEP_INTERVAL_MS = 1_000;
/**
 * The in-memory audit trail is also bounded by size (of its JSON), whatever --audit-max-events
 * says: one user typing long lines must not pin hundreds of megabytes. Redis caps by count.
 */
export const MEMORY_AUDIT_MAX_BYTES = 16 * 1024 * 1024;
/** Most events one audit query reads, as in the Redis store: a narrow filter pages on instead. */
const AUDIT_SCAN_LIMIT = 20_000;

/** The sequence number a cursor names; anything this store never issued is the caller's error. */
function auditCursor(cursor: string): number {
  const seq = /^\d{1,16}$/.test(cursor) ? Number(cursor) : NaN;
  if (!Number.isSafeInteger(seq)) throw new EntryError('ENTRY_BAD_REQUEST', 'cursor must be a `next` from an earlier page');
  return seq;
}

/** The embedded store: one broker, no Redis. Expiry is checked on read. */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly tickets = new Map<string, { value: string; expires: number }>();
  private readonly sessions = new Map<string, { record: SessionRecord; expires: number }>();
  private readonly slots = new Map<string, Map<string, number>>();
  private readonly windows = new Map<string, { count: number; resets: number }>();
  private windowsSweptAt = 0;
  private ticketsSweptAt = 0;
  private readonly revokedJti = new Map<string, number>();
  private readonly revokedUsers = new Map<string, number>();
  private readonly handlers = new Map<string, Array<(m: ControlMessage) => void>>();
  private readonly outputHandlers = new Map<string, Set<(data: Buffer) => void>>();
  /** The session ledger by broker, and until when each broker is marked alive. */
  private readonly ledgers = new Map<string, Map<string, string>>();
  private readonly alive = new Map<string, number>();
  /** Audit events, oldest first; `auditBase` is the sequence number of the first. */
  private audit: AuditEvent[] = [];
  private auditSizes: number[] = [];
  private auditBytes = 0;
  private auditBase = 0;

  async putTicket(key: string, value: string, ttlMs: number): Promise<void> {
    const now = Date.now();
    // Tickets share one lifetime, so the map is in expiry order (see dropExpired).
    this.ticketsSweptAt = dropExpired(this.tickets, (t) => t.expires, now, this.ticketsSweptAt);
    // Full of live tickets: refused, as forgetting one would break a login in progress.
    if (this.tickets.size >= MAX_ENTRIES) throw new Error('too many live tickets');
    this.tickets.delete(key);
    this.tickets.set(key, { value, expires: now + ttlMs });
  }

  async takeTicket(key: string): Promise<string | undefined> {
    const t = this.tickets.get(key);
    this.tickets.delete(key);
    return t && t.expires > Date.now() ? t.value : undefined;
  }

  async putSession(record: SessionRecord, ttlMs: number): Promise<void> {
    this.writeSessions([record], ttlMs, false);
  }

  async refreshSessions(records: readonly SessionRecord[], ttlMs: number, userSlots: boolean): Promise<void> {
    this.writeSessions(records, ttlMs, userSlots);
  }

  private writeSessions(records: readonly SessionRecord[], ttlMs: number, userSlots: boolean): void {
    const expires = Date.now() + ttlMs;
    for (const record of records) {
      this.sessions.set(record.id, { record: { ...record }, expires });
      if (!userSlots) continue;
      const slots = this.slots.get(record.user) ?? new Map<string, number>();
      slots.set(record.id, expires);
      this.slots.set(record.user, slots);
    }
  }

  async putLedgerEntry(broker: string, session: string, entry: string): Promise<void> {
    const mine = this.ledgers.get(broker) ?? new Map<string, string>();
    mine.set(session, entry);
    this.ledgers.set(broker, mine);
  }

  async removeLedgerEntry(broker: string, session: string): Promise<void> {
    this.ledgers.get(broker)?.delete(session);
  }

  async ledgerEntries(broker: string): Promise<string[]> {
    return [...(this.ledgers.get(broker)?.values() ?? [])];
  }

  async markBrokerAlive(broker: string, ttlMs: number): Promise<boolean> {
    const was = (this.alive.get(broker) ?? 0) > Date.now();
    if (ttlMs > 0) this.alive.set(broker, Date.now() + ttlMs);
    else this.alive.delete(broker);
    return was;
  }

  async claimLedgers(broker: string, minOwnMarkMs: number, places?: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    const now = Date.now();
    if ((this.alive.get(broker) ?? 0) - now < minOwnMarkMs) return out;
    const has = places && new Set(places);
    for (const [other, entries] of this.ledgers) {
      if (other === broker || (this.alive.get(other) ?? 0) > now) continue;
      const mine = this.ledgers.get(broker) ?? new Map<string, string>();
      for (const [session, entry] of entries) {
        const place = entryPlace(entry);
        if (has && place && !has.has(placeKey(place.backend, place.host))) continue;
        entries.delete(session);
        mine.set(session, entry);
        out.push(entry);
      }
      if (entries.size === 0) this.ledgers.delete(other);
      if (mine.size > 0) this.ledgers.set(broker, mine);
    }
    return out;
  }

  async removeSession(id: string): Promise<void> {
    this.sessions.delete(id);
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const s = this.sessions.get(id);
    return s && s.expires > Date.now() ? { ...s.record } : undefined;
  }

  async listSessions(): Promise<SessionRecord[]> {
    this.sweep(this.sessions);
    return [...this.sessions.values()].map((s) => ({ ...s.record }));
  }

  async acquireUserSlot(user: string, sessionId: string, limit: number, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const slots = this.slots.get(user) ?? new Map<string, number>();
    for (const [id, exp] of slots) if (exp <= now) slots.delete(id);
    if (!slots.has(sessionId) && slots.size >= limit) return false;
    slots.set(sessionId, now + ttlMs);
    this.slots.set(user, slots);
    return true;
  }

  async releaseUserSlot(user: string, sessionId: string): Promise<void> {
    const slots = this.slots.get(user);
    slots?.delete(sessionId);
    if (slots && slots.size === 0) this.slots.delete(user);
  }

  async hit(key: string, limit: number, windowMs: number): Promise<RateDecision> {
    const now = Date.now();
    let w = this.windows.get(key);
    if (!w || w.resets <= now) {
      // A new window goes to the end: the map stays in the order windows opened, oldest first.
      this.windows.delete(key);
      this.makeRoomForWindow(now);
      w = { count: 0, resets: now + windowMs };
      this.windows.set(key, w);
    }
    w.count++;
    return w.count > limit ? { allowed: false, retryAfterMs: w.resets - now } : { allowed: true, retryAfterMs: 0 };
  }

  async peek(key: string, limit: number): Promise<RateDecision & { count: number }> {
    const now = Date.now();
    const w = this.windows.get(key);
    if (!w || w.resets <= now) return { allowed: true, retryAfterMs: 0, count: 0 };
    if (w.count < limit) return { allowed: true, retryAfterMs: 0, count: w.count };
    return { allowed: false, retryAfterMs: w.resets - now, count: w.count };
  }

  async revokeToken(jti: string, untilMs: number): Promise<void> {
    // Revocations whose time has passed revoke nothing: dropped, as Redis lets them expire.
    const now = Date.now();
    for (const [old, until] of this.revokedJti) if (until <= now) this.revokedJti.delete(old);
    if (untilMs > now) this.revokedJti.set(jti, untilMs);
  }

  async revokeUserBefore(user: string, beforeMs: number): Promise<void> {
    this.revokedUsers.set(user, Math.max(beforeMs, this.revokedUsers.get(user) ?? 0));
  }

  async isRevoked(jti: string | undefined, user: string, issuedAtMs: number): Promise<boolean> {
    if (jti) {
      const until = this.revokedJti.get(jti);
      if (until !== undefined && until > Date.now()) return true;
    }
    const before = this.revokedUsers.get(user);
    return before !== undefined && issuedAtMs < before;
  }

  async publish(broker: string, message: ControlMessage): Promise<number | undefined> {
    const handlers = this.handlers.get(broker) ?? [];
    for (const h of handlers) h(message);
    return handlers.length;
  }

  async subscribe(broker: string, handler: (m: ControlMessage) => void): Promise<void> {
    this.handlers.set(broker, [...(this.handlers.get(broker) ?? []), handler]);
  }

  /** In one process no message is lost: nothing to resume. */
  onControlResumed(): void {}

  async appendAudit(event: AuditEvent, maxLength: number): Promise<void> {
    const size = JSON.stringify(event).length;
    this.audit.push(event);
    this.auditSizes.push(size);
    this.auditBytes += size;
    let drop = Math.max(0, this.audit.length - maxLength);
    let bytes = this.auditBytes;
    for (let i = 0; i < drop; i++) bytes -= this.auditSizes[i]!;
    while (bytes > MEMORY_AUDIT_MAX_BYTES && drop < this.audit.length - 1) bytes -= this.auditSizes[drop++]!;
    if (drop > 0) {
      this.audit.splice(0, drop);
      this.auditSizes.splice(0, drop);
      this.auditBytes = bytes;
      this.auditBase += drop;
    }
  }

  async queryAudit(query: AuditQuery): Promise<AuditPage> {
    // Cursors are sequence numbers: stable while older events are dropped from the front.
    const newest = this.auditBase + this.audit.length - 1;
    // A cursor past the newest event (from before a restart, or made up) reads from the newest
    // one, as the Redis store does: the walk never starts beyond what exists.
    let seq = query.cursor !== undefined ? Math.min(auditCursor(query.cursor), newest) : newest;
    // Events are kept in the order they were written: `until` says where the walk starts.
    if (query.until !== undefined) seq = Math.min(seq, this.auditBase + this.lastWrittenBy(query.until + AUDIT_CLOCK_SLACK_MS));
    const oldest = query.since !== undefined ? query.since - AUDIT_CLOCK_SLACK_MS : -Infinity;
    const events: AuditEvent[] = [];
    for (let scanned = 0; seq >= this.auditBase && events.length < query.limit && scanned < AUDIT_SCAN_LIMIT; seq--, scanned++) {
      const e = this.audit[seq - this.auditBase]!;
      if (Date.parse(e.time) < oldest) return { events, next: undefined };
      if (matches(e, query)) events.push(e);
    }
    return { events, next: seq >= this.auditBase ? String(seq) : undefined };
  }

  /** The index of the last event kept that was written at or before `time` (-1 when none). */
  private lastWrittenBy(time: number): number {
    let lo = 0;
    let hi = this.audit.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Date.parse(this.audit[mid]!.time) <= time) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  async publishOutput(sessionId: string, data: Uint8Array): Promise<void> {
    const buf = Buffer.from(data);
    for (const h of this.outputHandlers.get(sessionId) ?? []) h(buf);
  }

  async subscribeOutput(sessionId: string, handler: (data: Buffer) => void): Promise<() => Promise<void>> {
    const set = this.outputHandlers.get(sessionId) ?? new Set();
    set.add(handler);
    this.outputHandlers.set(sessionId, set);
    return async () => {
      set.delete(handler);
      if (set.size === 0) this.outputHandlers.delete(sessionId);
    };
  }

  async healthy(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }

  private sweep(map: Map<string, { expires: number }>): void {
    const now = Date.now();
    for (const [k, v] of map) if (v.expires <= now) map.delete(k);
  }

  /**
   * Keeps the windows under MAX_ENTRIES in amortized O(1) per new window. When the table is full
   * of live windows the oldest is forgotten, which resets that key's count. That fails open for
   * one key, and buys an attacker nothing: pushing it out takes 100,000 fresh keys (addresses),
   * each with its own allowance of failures already. Refusing to track new keys instead would let
   * whoever filled the table first go uncounted from every further address for a whole window,
   * and refusing them outright would lock out everyone with a typo.
   */
  private makeRoomForWindow(now: number): void {
    this.windowsSweptAt = dropExpired(this.windows, (w) => w.resets, now, this.windowsSweptAt);
    for (const k of this.windows.keys()) {
      if (this.windows.size < MAX_ENTRIES) break;
      this.windows.delete(k);
    }
  }
}

/**
 * Drops expired entries of a map kept in the order its entries were made. Those at the front
 * leave first, each once: O(1) amortized per new entry. When the map is still full, entries of
 * other lifetimes may have expired behind a live one: a full sweep, at most once per
 * FULL_SWEEP_INTERVAL_MS after `sweptAt`. Returns when the last full sweep ran.
 */
function dropExpired<V>(map: Map<string, V>, expiresAt: (v: V) => number, now: number, sweptAt: number): number {
  for (const [k, v] of map) {
    if (expiresAt(v) > now) break;
    map.delete(k);
  }
  if (map.size < MAX_ENTRIES || now - sweptAt < FULL_SWEEP_INTERVAL_MS) return sweptAt;
  for (const [k, v] of map) if (expiresAt(v) <= now) map.delete(k);
  return now;
}

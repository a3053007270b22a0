/**
 * Shared state: everything several brokers must agree on. `MemoryStore` serves one broker;
 * `RedisStore` serves many. Both pass the same contract suite (test/integration/store-contract).
 */

import type { AuditEvent, AuditPage, AuditQuery } from '../audit/events.js';
import type { SessionRecord } from './session-record.js';

export type { SessionRecord };

/** A control message for the broker holding a session. */
export type ControlMessage =
  | { type: 'kill'; sessionId: string; by: string }
  /** Start (or keep) publishing a session's output for watchers elsewhere; `until` in epoch ms. */
  | { type: 'watch'; sessionId: string; by: string; until: number }
  /** A revocation was stored: end the sessions admitted with a token it covers. */
  | { type: 'revoke'; by: string; revocation: Revocation };

/** Where a control message for every broker goes (no broker id has this form). */
export const EVERY_BROKER = '*';

/** One revocation: a token by its jti, or every token of a user issued before a time (epoch ms). */
export type Revocation = { jti: string } | { user: string; before: number };

export interface RateDecision {
  allowed: boolean;
  /** When not allowed: how long until the window resets. */
  retryAfterMs: number;
}

export interface Store {
  readonly kind: 'memory' | 'redis';

  // One-time tickets, stored under a hash of the ticket.
  putTicket(key: string, value: string, ttlMs: number): Promise<void>;
  /** Returns the value and deletes it, atomically: two brokers racing get it once. */
  takeTicket(key: string): Promise<string | undefined>;

  // Live session registry, kept fresh by heartbeats; a record expires when its broker dies.
  putSession(record: SessionRecord, ttlMs: number): Promise<void>;
  /**
   * A heartbeat: writes the records again with a fresh TTL and, with `userSlots`, their users'
   * slots, put back if the store lost them (restarted, or paused past the TTL): the sessions
   * hold them as long as they live. One round trip for all of them. The caller releases again
   * the slot of a session that ended while this was on its way.
   */
  refreshSessions(records: readonly SessionRecord[], ttlMs: number, userSlots: boolean): Promise<void>;
  removeSession(id: string): Promise<void>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  listSessions(): Promise<SessionRecord[]>;

  /** Takes one of `limit` session slots for `user`; false when all are taken. Slots expire with `ttlMs`. */
  acquireUserSlot(user: string, sessionId: string, limit: number, ttlMs: number): Promise<boolean>;
  releaseUserSlot(user: string, sessionId: string): Promise<void>;

  /** Counts a failure for `key` in a fixed window; denies once `limit` is reached. */
  hit(key: string, limit: number, windowMs: number): Promise<RateDecision>;
  /** Whether `key` is over its limit now, and its count in the current window, without counting. */
  peek(key: string, limit: number): Promise<RateDecision & { count: number }>;

  // Token revocation.
  revokeToken(jti: string, untilMs: number): Promise<void>;
  revokeUserBefore(user: string, beforeMs: number): Promise<void>;
  /** Whether the token (by jti, or by its user and issue time) has been revoked. */
  isRevoked(jti: string | undefined, user: string, issuedAtMs: number): Promise<boolean>;

  // Cross-broker control over pub/sub.
  /**
   * Sends a control message to a broker; resolves with how many of its subscriptions heard it
   * (0: none listens now, the message is lost), or undefined where that cannot be known (Redis
   * Cluster counts one node's subscribers only).
   */
  publish(broker: string, message: ControlMessage): Promise<number | undefined>;
  subscribe(broker: string, handler: (message: ControlMessage) => void): Promise<void>;
  /**
   * Calls `handler` each time the control subscriptions are back after the link to the store
   * broke: messages published meanwhile were lost, and whoever relies on them checks the store.
   */
  onControlResumed(handler: () => void): void;

  // The audit trail: capped, newest first on read.
  appendAudit(event: AuditEvent, maxLength: number): Promise<void>;
  queryAudit(query: AuditQuery): Promise<AuditPage>;

  // Live watch across brokers: output of a watched session fanned out by session id.
  publishOutput(sessionId: string, data: Uint8Array): Promise<void>;
  /** Returns a function that unsubscribes. */
  subscribeOutput(sessionId: string, handler: (data: Buffer) => void): Promise<() => Promise<void>>;

  // The shared session ledger (see ledger/session-ledger.ts): entries by the broker holding them.
  putLedgerEntry(broker: string, session: string, entry: string): Promise<void>;
  removeLedgerEntry(broker: string, session: string): Promise<void>;
  /** Every entry `broker` holds, as written. */
  ledgerEntries(broker: string): Promise<string[]>;
  /** Says `broker` runs, for the next `ttlMs` (0 says it has stopped); whether it was marked already (false: a new broker, or the store lost its data). */
  markBrokerAlive(broker: string, ttlMs: number): Promise<boolean>;
  /**
   * Moves the entries of every broker not marked alive into `broker`'s, atomically (one claimer
   * each), and returns them; only while `broker`'s own mark has `minOwnMarkMs` or more to live. A
   * claim that waited in the store through a pause of it (when every mark may have lapsed, and the
   * brokers still running have not yet renewed theirs) then finds the claimer's own mark as old
   * as theirs, and does nothing. With `places` (placeKey of each host or cluster the claimer
   * has), only entries of those are moved, and entries without a readable place: the others stay
   * where they are for a broker that has their host.
   */
  claimLedgers(broker: string, minOwnMarkMs: number, places?: readonly string[]): Promise<string[]>;

  /** Whether the store answers now: false while Redis is unreachable, or connected and not answering. */
  healthy(): Promise<boolean>;
  close(): Promise<void>;
}

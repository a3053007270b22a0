import { storeCall } from '../store/store-call.js';
import { EntryError } from '../errors.js';
import type { Logger } from '../log.js';
import type { SessionRecord, Store } from '../store/store.js';
import type { AdmittedSession } from './types.js';

export interface RegistryOptions {
  brokerId: string;
  /** How the other brokers reach this one (--advertise-url). */
  brokerUrl?: string;
  ttlMs: number;
  /** 0: no cap. */
  maxUserSessions: number;
}

/**
 * Records refreshed per store call in a heartbeat. Each slice is one round trip; its synchronous
 * part (the records copied, serialised and queued on the Redis connection) measured 1.1–1.7 ms
 * (median) for 200 records, and the relay runs between slices: 1,000 sessions are five of them.
 */
export const HEARTBEAT_SLICE = 200;

/** A session added and not yet removed. */
interface LiveSession {
  record: SessionRecord;
  counters: () => { bytesIn: number; bytesOut: number };
  /** Heartbeated: its first write is done, or failed and is left to the heartbeat. */
  listed: boolean;
  removed: boolean;
}

/**
 * The live-session registry in the shared store: each session is written at start, refreshed
 * by a heartbeat every third of the TTL (with its byte counts), and removed at the end; a
 * broker that dies stops heartbeating and its records expire. Also holds per-user slots.
 *
 * One timer beats for all of the broker's sessions, in slices of HEARTBEAT_SLICE records per
 * store call, where a timer per session made a transaction per session: 200 a second at 1,000
 * sessions, with twice the broker's CPU and five times Redis's commands (bench/README.md).
 */
export class SessionRegistry {
  private readonly live = new Map<string, LiveSession>();
  private timer: NodeJS.Timeout | undefined;
  /** A beat still on its way when the next is due is not doubled: the next one is skipped. */
  private beating = false;

  constructor(
    private readonly store: Store,
    private readonly options: RegistryOptions,
    private readonly log: Logger,
  ) {}

  get brokerId(): string {
    return this.options.brokerId;
  }

  get brokerUrl(): string | undefined {
    return this.options.brokerUrl;
  }

  /** Takes a session slot for the user; throws ENTRY_USER_SESSION_LIMIT when all are taken. */
  async reserve(user: string, sessionId: string): Promise<void> {
    if (this.options.maxUserSessions <= 0) return;
    const ok = await storeCall(() => this.store.acquireUserSlot(user, sessionId, this.options.maxUserSessions, this.options.ttlMs));
    if (!ok) throw new EntryError('ENTRY_USER_SESSION_LIMIT', `${user} already has ${this.options.maxUserSessions}`);
  }

  /** The record a session is listed with: who, from where, into what, held by this broker. */
  recordFor(upgrade: AdmittedSession, startedAt: number, what: Pick<SessionRecord, 'command' | 'tty' | 'attach'>): SessionRecord {
    const { sessionId, identity, target, container } = upgrade;
    return {
      id: sessionId,
      user: identity.user,
      source: upgrade.remoteAddress,
      app: target.app,
      proc: target.proc,
      instance: target.instance,
      container: container.id,
      dockerHost: container.host,
      broker: this.brokerId,
      ...(this.brokerUrl ? { brokerUrl: this.brokerUrl } : {}),
      startedAt: new Date(startedAt).toISOString(),
      bytesIn: 0,
      bytesOut: 0,
      ...what,
    };
  }

  /**
   * The records as listed, with this broker's own sessions' byte counts as of now: the stored
   * ones are a heartbeat old (a session that just started shows none).
   */
  current(records: SessionRecord[]): SessionRecord[] {
    return records.map((r) => {
      const live = r.broker === this.brokerId ? this.live.get(r.id) : undefined;
      return live && !live.removed ? { ...r, ...live.counters() } : r;
    });
  }

  /** Registers a running session and keeps it fresh until `remove`. */
  async add(record: SessionRecord, counters: () => { bytesIn: number; bytesOut: number }): Promise<void> {
    const entry: LiveSession = { record, counters, listed: false, removed: false };
    this.live.set(record.id, entry);
    try {
      await storeCall(() => this.store.putSession(record, this.options.ttlMs));
    } catch (err) {
      // Not listed yet: the heartbeat writes it once the store answers again, so that a session
      // started during an outage can still be seen, killed, watched and resumed elsewhere.
      if (!entry.removed) this.heartbeat(entry);
      throw err;
    }
    // Removed while being written (the session was killed meanwhile): the removal wins, and the
    // write, which may have landed after it, is taken back; no heartbeat starts.
    if (entry.removed) return this.unlist(record);
    this.heartbeat(entry);
  }

  private heartbeat(entry: LiveSession): void {
    entry.listed = true;
    this.timer ??= setInterval(() => void this.beat(), Math.max(100, Math.floor(this.options.ttlMs / 3)));
    this.timer.unref();
  }

  /** Refreshes every listed session, a slice per store call. */
  private async beat(): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    let failed = 0;
    let error: unknown;
    try {
      const listed = [...this.live.values()].filter((s) => s.listed);
      for (let i = 0; i < listed.length; i += HEARTBEAT_SLICE) {
        const slice = listed.slice(i, i + HEARTBEAT_SLICE).filter((s) => !s.removed);
        if (slice.length === 0) continue;
        try {
          await this.store.refreshSessions(
            slice.map((s) => ({ ...s.record, ...s.counters() })),
            this.options.ttlMs,
            this.options.maxUserSessions > 0,
          );
        } catch (err) {
          // The sessions go on: losing the store must not end what works without it.
          failed += slice.length;
          error = err;
        }
        // A beat that was on its way when a session ended must not list it again, nor hold its slot.
        const ended = slice.filter((s) => s.removed);
        if (ended.length > 0) await Promise.all(ended.map((s) => this.unlist(s.record)));
      }
    } finally {
      this.beating = false;
    }
    if (failed > 0) this.log.warn('session heartbeat failed', { sessions: failed, error: error as Error });
  }

  private async unlist(record: SessionRecord): Promise<void> {
    await Promise.all([
      this.store.removeSession(record.id),
      this.options.maxUserSessions > 0 ? this.store.releaseUserSlot(record.user, record.id) : Promise.resolve(),
    ]).catch((err: unknown) => this.log.warn('session record not removed (it expires by itself)', { session: record.id, error: err as Error }));
  }

  /** Stops heartbeating a session; the timer with it when it was the last. */
  private forget(sessionId: string): void {
    this.live.delete(sessionId);
    if (this.live.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  async remove(user: string, sessionId: string): Promise<void> {
    const entry = this.live.get(sessionId);
    if (entry) {
      entry.removed = true;
      this.forget(sessionId);
    }
    await Promise.all([
      this.store.removeSession(sessionId),
      this.options.maxUserSessions > 0 ? this.store.releaseUserSlot(user, sessionId) : Promise.resolve(),
    ]).catch((err: unknown) => this.log.warn('session record not removed (it expires by itself)', { session: sessionId, error: err as Error }));
  }
}

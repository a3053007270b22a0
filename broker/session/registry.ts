import { storeCall } from '../store/store-call.js';
import { EntryError } from '../errors.js';
import type { Logger } from '../log.js';
import type { SessionRecord, Store } from '../store/store.js';

export interface RegistryOptions {
  brokerId: string;
  /** How the other brokers reach this one (--advertise-url). */
  brokerUrl?: string;
  ttlMs: number;
  /** 0: no cap. */
  maxUserSessions: number;
}

/**
 * The live-session registry in the shared store: each session is written at start, refreshed
 * by a heartbeat every third of the TTL (with its byte counts), and removed at the end; a
 * broker that dies stops heartbeating and its records expire. Also holds per-user slots.
 */
export class SessionRegistry {
  /** Sessions added and not yet removed, with their heartbeat once the first write is done. */
  private readonly live = new Map<string, { removed: boolean; timer?: NodeJS.Timeout }>();

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

  /** Registers a running session and keeps it fresh until `remove`. */
  async add(record: SessionRecord, counters: () => { bytesIn: number; bytesOut: number }): Promise<void> {
    const entry: { removed: boolean; timer?: NodeJS.Timeout } = { removed: false };
    this.live.set(record.id, entry);
    try {
      await storeCall(() => this.store.putSession(record, this.options.ttlMs));
    } catch (err) {
      if (this.live.get(record.id) === entry) this.live.delete(record.id);
      throw err;
    }
    // Removed while being written (the session was killed meanwhile): the removal wins, and the
    // write, which may have landed after it, is taken back; no heartbeat starts.
    if (entry.removed) return this.unlist(record.id);
    const beat = async () => {
      if (entry.removed) return;
      const fresh = { ...record, ...counters() };
      try {
        await this.store.putSession(fresh, this.options.ttlMs);
        // A beat that was on its way when the session ended must not list it again.
        if (entry.removed) return await this.unlist(record.id);
        if (this.options.maxUserSessions > 0) await this.store.refreshUserSlot(record.user, record.id, this.options.ttlMs);
      } catch (err) {
        // The session itself goes on: losing the store must not end what works without it.
        this.log.warn('session heartbeat failed', { session: record.id, error: err as Error });
      }
    };
    entry.timer = setInterval(() => void beat(), Math.max(100, Math.floor(this.options.ttlMs / 3)));
    entry.timer.unref();
  }

  private async unlist(sessionId: string): Promise<void> {
    await this.store.removeSession(sessionId).catch((err: unknown) => this.log.warn('session record not removed (it expires by itself)', { session: sessionId, error: err as Error }));
  }

  async remove(user: string, sessionId: string): Promise<void> {
    const entry = this.live.get(sessionId);
    if (entry) {
      entry.removed = true;
      clearInterval(entry.timer);
      this.live.delete(sessionId);
    }
    await Promise.all([
      this.store.removeSession(sessionId),
      this.options.maxUserSessions > 0 ? this.store.releaseUserSlot(user, sessionId) : Promise.resolve(),
    ]).catch((err: unknown) => this.log.warn('session record not removed (it expires by itself)', { session: sessionId, error: err as Error }));
  }
}

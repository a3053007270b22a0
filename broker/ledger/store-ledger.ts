import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { storeCall } from '../store/store-call.js';
import { isSessionId, type LedgerEntry, parseEntry, type SessionLedger } from './session-ledger.js';

/**
 * How long a broker's "alive" mark lasts in the store: four session TTLs (a minute by default).
 * Another broker ends the sessions of one whose mark has lapsed, so the mark must outlast any
 * hiccup of a broker that still runs: it is refreshed every twelfth of it (5 s), so twelve
 * refreshes in a row (each bounded by the store's 5 s command timeout) must fail first.
 */
export function aliveMarkMs(sessionTtlMs: number): number {
  return 4 * sessionTtlMs;
}

/**
 * The session ledger in the shared store, for brokers behind one address: the entries of a
 * broker that died are claimed by any other (or by itself, started again) once its alive mark
 * has lapsed, whether or not it ever comes back.
 */
export class StoreLedger implements SessionLedger {
  readonly kind = 'store';
  private readonly timer: NodeJS.Timeout;
  /** The last refresh of the alive mark failed: said once per outage. */
  private markFailing = false;
  /** Since when every refresh of this broker's mark has succeeded (0: the last one failed). */
  private healthySince = 0;

  constructor(
    private readonly store: Store,
    private readonly broker: string,
    private readonly aliveMs: number,
    private readonly log: Logger,
  ) {
    void this.markAlive();
    this.timer = setInterval(() => void this.markAlive(), Math.max(50, Math.floor(aliveMs / 12)));
    this.timer.unref();
  }

  private async markAlive(): Promise<void> {
    try {
      await storeCall(() => this.store.markBrokerAlive(this.broker, this.aliveMs));
      this.markFailing = false;
      this.healthySince ||= Date.now();
    } catch (err) {
      this.healthySince = 0;
      if (!this.markFailing) this.log.warn("broker's alive mark not refreshed: if this lasts, other brokers take its sessions for a dead broker's", { aliveMs: this.aliveMs, error: err as Error });
      this.markFailing = true;
    }
  }

  async add(entry: LedgerEntry): Promise<void> {
    if (!isSessionId(entry.session)) return;
    try {
      await storeCall(() => this.store.putLedgerEntry(this.broker, entry.session, JSON.stringify(entry)));
    } catch (err) {
      this.log.warn('session not in the ledger: if this broker dies, its processes are left running', { session: entry.session, error: err as Error });
    }
  }

  async remove(session: string): Promise<void> {
    try {
      await storeCall(() => this.store.removeLedgerEntry(this.broker, session));
    } catch (err) {
      // Left there, it is claimed when this broker is gone and found to have nothing left to end.
      this.log.warn('session not removed from the ledger', { session, error: err as Error });
    }
  }

  /**
   * Claims only once this broker has reached the store for a whole alive window: after an outage
   * every broker's mark may have lapsed, and the ones still running need that long to renew
   * theirs before a lapsed mark means a dead broker. A new broker waits as long, which a dead
   * broker's mark takes to lapse anyway.
   */
  async claimOrphans(): Promise<LedgerEntry[]> {
    if (this.healthySince === 0 || Date.now() - this.healthySince < this.aliveMs) return [];
    const raw = await storeCall(() => this.store.claimLedgers(this.broker));
    const entries: LedgerEntry[] = [];
    for (const text of raw) {
      const e = parseEntry(text);
      if (e) entries.push(e);
      else this.log.warn('unreadable ledger entry dropped', { entry: text.slice(0, 200) });
    }
    return entries;
  }

  /** What this broker could not end is left to the others at once: its mark is taken down. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await storeCall(() => this.store.markBrokerAlive(this.broker, 0)).catch(() => undefined);
  }
}

import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { storeCall } from '../store/store-call.js';
import { holderAnswers } from './holder-probe.js';
import { isSessionId, type LedgerEntry, type LedgerHolder, parseEntry, type SessionLedger } from './session-ledger.js';

/**
 * How long a broker's alive mark lasts in the store: four session TTLs (a minute by default).
 * Another broker ends the sessions of one whose mark has lapsed, so the mark must outlast any
 * hiccup of a broker that still runs: it is renewed every twelfth of it (5 s), so twelve
 * renewals in a row (each bounded by the store's 5 s command timeout) must fail first.
 */
export function aliveMarkMs(sessionTtlMs: number): number {
  return 4 * sessionTtlMs;
}

/** An entry as the store held it, and read. */
type Claimed = { entry: LedgerEntry; text: string };

/** Renewals of the alive mark per its lifetime (see aliveMarkMs). */
const RENEWALS_PER_MARK = 12;

/**
 * The session ledger in the shared store, for brokers behind one address: the entries of a
 * broker that died are claimed by any other (or by itself, started again) once its alive mark
 * has lapsed, whether or not it ever comes back.
 */
export class StoreLedger implements SessionLedger {
  readonly kind = 'store';
  private readonly timer: NodeJS.Timeout;
  private readonly renewMs: number;
  /** The last renewal of the alive mark failed: said once per outage. */
  private markFailing = false;
  /** Since when (performance.now) every renewal of this broker's mark has succeeded; 0: the last one failed. */
  private healthySince = 0;
  /** Whether the mark was ever set: a renewal that finds none after that means the store lost its data. */
  private marked = false;
  /** This broker's entries as written, to write again into a store that lost them. */
  private readonly entries = new Map<string, string>();
  /** Entries whose write failed (the store unreachable for a moment): written at the next renewal. */
  private readonly unwritten = new Set<string>();
  /** Sessions whose removal failed: removed at the next renewal, or claimed later as ended. */
  private readonly unremoved = new Set<string>();
  /** Sessions being removed: never written again meanwhile. */
  private readonly removing = new Set<string>();

  /**
   * The next claim reads this broker's own ledger for entries it does not know it holds: a claim
   * failed without an answer (it may have moved entries here all the same), or a give-back was
   * cut short.
   */
  private readOwnLedger = false;
  /** Holders found cut off from the store but answering: said once each. */
  private readonly toldLive = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly broker: string,
    private readonly aliveMs: number,
    private readonly log: Logger,
    /**
     * The hosts and clusters this broker has (placeKey): it claims only what it can end, and a
     * dead broker's entries on others stay for a broker that has them. Undefined: every entry.
     */
    private readonly places: readonly string[] | undefined = undefined,
    private readonly answers: (holder: LedgerHolder) => Promise<boolean> = holderAnswers,
  ) {
    this.renewMs = Math.max(50, Math.floor(aliveMs / RENEWALS_PER_MARK));
    void this.markAlive();
    this.timer = setInterval(() => void this.markAlive(), this.renewMs);
    this.timer.unref();
  }

  private async markAlive(): Promise<void> {
    let was: boolean;
    try {
      was = await storeCall(() => this.store.markBrokerAlive(this.broker, this.aliveMs));
      this.markFailing = false;
      this.healthySince ||= performance.now();
    } catch (err) {
      this.healthySince = 0;
      if (!this.markFailing) this.log.warn("broker's alive mark not renewed: if this lasts, other brokers take its sessions for a dead broker's", { aliveMs: this.aliveMs, error: err as Error });
      this.markFailing = true;
      return;
    }
    // A store restarted without its data (or this mark lapsed): the ledger of the sessions that
    // run is written again. Otherwise only what a failed call left undone is done again.
    const lost = this.marked && !was && this.entries.size > 0;
    this.marked = true;
    if (lost) this.log.warn('alive mark was missing from the store: writing the session ledger again', { sessions: this.entries.size });
    const toWrite = lost ? [...this.entries.keys()] : [...this.unwritten];
    await Promise.all([...toWrite.map((session) => this.write(session)), ...[...this.unremoved].map((session) => this.erase(session))]);
  }

  /** Writes this broker's entry of `session` as it stands; kept for the next renewal when the store failed. */
  private async write(session: string): Promise<void> {
    const text = this.entries.get(session);
    if (text === undefined || this.removing.has(session)) {
      this.unwritten.delete(session);
      return;
    }
    try {
      await storeCall(() => this.store.putLedgerEntry(this.broker, session, text));
      this.unwritten.delete(session);
    } catch (err) {
      if (!this.unwritten.has(session)) this.log.warn('session not in the ledger yet: written again once the store answers', { session, error: err as Error });
      this.unwritten.add(session);
    }
  }

  /** Removes the entry of `session` from the store; kept for the next renewal when the store failed. */
  private async erase(session: string): Promise<void> {
    try {
      await storeCall(() => this.store.removeLedgerEntry(this.broker, session));
      this.unremoved.delete(session);
    } catch (err) {
      // Left there, it would be claimed when this broker is gone as a session with nothing to end.
      if (!this.unremoved.has(session)) this.log.warn('session not removed from the ledger yet: removed once the store answers', { session, error: err as Error });
      this.unremoved.add(session);
    }
  }

  async add(entry: LedgerEntry): Promise<void> {
    if (!isSessionId(entry.session)) return;
    this.entries.set(entry.session, JSON.stringify(entry));
    await this.write(entry.session);
  }

  async remove(session: string): Promise<void> {
    this.removing.add(session);
    this.unwritten.delete(session);
    try {
      await this.erase(session);
    } finally {
      // Only now: a claim reading this broker's own ledger meanwhile still knows the session.
      this.entries.delete(session);
      this.removing.delete(session);
    }
  }

  /**
   * Claims only once this broker has reached the store for a whole alive window: after an outage
   * every broker's mark may have lapsed, and the ones still running need that long to renew
   * theirs before a lapsed mark means a dead broker. A new broker waits as long, which a dead
   * broker's mark takes to lapse anyway. In the store, the claim also checks this broker's own
   * mark is fresh (renewed within two renewals), for a claim that waited there through a pause.
   */
  async claimOrphans(): Promise<LedgerEntry[] | undefined> {
    if (this.healthySince === 0 || performance.now() - this.healthySince < this.aliveMs) return undefined;
    let raw: string[];
    try {
      raw = await storeCall(() => this.store.claimLedgers(this.broker, this.aliveMs - 2 * this.renewMs, this.places));
    } catch (err) {
      this.readOwnLedger = true;
      throw err;
    }
    if (this.readOwnLedger) {
      // Beyond its own sessions and what it knows it claimed: the one just made's among it.
      raw = (await storeCall(() => this.store.ledgerEntries(this.broker))).filter((text) => {
        const e = parseEntry(text);
        return !e || !(this.entries.has(e.session) || this.unremoved.has(e.session));
      });
      this.readOwnLedger = false;
    }
    const entries: Claimed[] = [];
    for (const text of raw) {
      const entry = parseEntry(text);
      if (!entry) {
        this.log.warn('unreadable ledger entry dropped', { entry: text.slice(0, 200) });
        continue;
      }
      // One this broker holds already (its own session, back from a broker that had claimed it
      // while this one was cut off, or one it is ending): not another orphan.
      if (this.entries.has(entry.session) || this.unremoved.has(entry.session)) continue;
      entries.push({ entry, text });
      this.entries.set(entry.session, text);
    }
    return this.withoutLiveHolders(entries);
  }

  /**
   * A lapsed mark may be a broker cut off from the store alone, still serving its clients:
   * its sessions are given back to it when it answers at its address as itself, and claimed
   * again at a later sweep if it is gone by then. Once it reaches the store it renews its mark
   * and writes its ledger again (see markAlive).
   */
  private async withoutLiveHolders(claimed: Claimed[]): Promise<LedgerEntry[]> {
    const byHolder = new Map<string, { holder: LedgerHolder; entries: Claimed[] }>();
    const orphans: LedgerEntry[] = [];
    for (const c of claimed) {
      const h = c.entry.holder;
      if (!h || typeof h.broker !== 'string' || typeof h.url !== 'string' || h.broker === this.broker) {
        orphans.push(c.entry);
        continue;
      }
      const group = byHolder.get(h.broker) ?? { holder: h, entries: [] };
      group.entries.push(c);
      byHolder.set(h.broker, group);
    }
    await Promise.all(
      [...byHolder.values()].map(async ({ holder, entries }) => {
        if (!(await this.answers(holder))) {
          orphans.push(...entries.map((c) => c.entry));
          return;
        }
        const fields = { holder: holder.broker, url: holder.url, sessions: entries.length };
        for (const { entry } of entries) this.entries.delete(entry.session);
        try {
          for (const { entry, text } of entries) {
            await storeCall(() => this.store.putLedgerEntry(holder.broker, entry.session, text));
            await storeCall(() => this.store.removeLedgerEntry(this.broker, entry.session));
          }
        } catch (err) {
          // What is still in this broker's ledger is looked at again at the next claim.
          this.readOwnLedger = true;
          this.log.warn("a live broker's sessions not given back to it yet", { ...fields, error: err as Error });
          return;
        }
        if (this.toldLive.has(holder.broker)) return this.log.debug('sessions given back to a broker that answers', fields);
        this.toldLive.add(holder.broker);
        this.log.warn('a broker whose alive mark lapsed still answers: its sessions are left to it', fields);
      }),
    );
    return orphans;
  }

  /** What this broker could not end is left to the others at once: its mark is taken down. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    // A removal still owed goes first: left there, it would be claimed as a dead broker's session.
    await Promise.all([...this.unremoved].map((session) => this.erase(session)));
    await storeCall(() => this.store.markBrokerAlive(this.broker, 0)).catch(() => undefined);
  }
}

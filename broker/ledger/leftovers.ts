import type { LeftoverPlace } from '../backend/backend.js';
import { Limiter } from '../backend/pacing.js';
import type { Logger } from '../log.js';
import type { LedgerEntry, SessionLedger } from './session-ledger.js';

/** What ends a session's processes when the session that started them is gone. */
/** A leftover session, ended: its processes were ended, or its target had gone with them. */
export type LeftoverEnded = (entry: LedgerEntry, how: 'ended' | 'target-gone') => void;

export interface LeftoverEnder {
  /** Ends `session`'s processes in `place`: true when done there, false when the target itself is gone; rejects when it could not ask. */
  endLeftovers(place: LeftoverPlace, session: string, graceMs: number): Promise<boolean>;
}

/**
 * How often a ledger on disk is looked at for brokers that died, and what could not be ended is
 * tried again: a directory listing per minute costs nothing, and a broker that died while
 * another was running (sharing its state directory) has its sessions ended within the minute.
 * A ledger in the store is looked at once per session TTL (see broker.ts).
 */
export const FILE_SWEEP_INTERVAL_MS = 60_000;

/**
 * Leftover sessions ended at once. Each is what a session's own clean-up is (a /proc walk, or
 * an exec in its target) and waits up to `--kill-grace`; a broker that died with 1,000
 * sessions has them ended in 1,000 / 8 × (a few ms to the grace) while the new one serves.
 */
const SWEEP_CONCURRENCY = 8;

/**
 * The processes of sessions that no broker will end: those of brokers that died (claimed from
 * the ledger) and those of this broker's own sessions whose clean-up failed (the engine or
 * cluster was unreachable). Each is tried until done, then forgotten.
 */
export class Leftovers {
  /** Entries still to end, by session; `claimed`: left by a dead broker. */
  private readonly pending = new Map<string, LedgerEntry & { claimed?: boolean }>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private readonly lanes = new Limiter(SWEEP_CONCURRENCY);
  /** The last claim failed (the store unreachable): said once per outage. */
  private claimFailing = false;

  constructor(
    private readonly ledger: SessionLedger,
    private readonly ender: LeftoverEnder,
    private readonly graceMs: number,
    private readonly log: Logger,
    private readonly sweepIntervalMs = FILE_SWEEP_INTERVAL_MS,
    /** Told of each leftover session once it is over (the audit trail's end of it). */
    private readonly onEnded: LeftoverEnded = () => undefined,
  ) {}

  /** Claims what dead brokers left (before this broker takes sessions), then ends it in the background. */
  async start(): Promise<void> {
    await this.claim();
    void this.sweep();
    this.timer = setInterval(() => void this.claim().then(() => this.sweep()), this.sweepIntervalMs);
    this.timer.unref();
  }

  private async claim(): Promise<void> {
    let claimed: LedgerEntry[];
    try {
      claimed = await this.ledger.claimOrphans();
      this.claimFailing = false;
    } catch (err) {
      if (!this.claimFailing) this.log.warn('session ledger not read: tried again at the next sweep', { error: err as Error });
      this.claimFailing = true;
      return;
    }
    if (claimed.length === 0) return;
    this.log.warn('sessions left by a broker that stopped without ending them: ending their processes', { sessions: claimed.length });
    for (const e of claimed) this.pending.set(e.session, { ...e, claimed: true });
  }

  /** Records a session before its process starts. */
  record(entry: LedgerEntry): Promise<void> {
    return this.ledger.add(entry);
  }

  /** A session has ended: forgotten when its processes were ended, kept and retried when they may not have been. */
  async ended(entry: LedgerEntry, processesEnded: boolean): Promise<void> {
    if (processesEnded) return this.ledger.remove(entry.session);
    this.pending.set(entry.session, entry);
  }

  /** Ends every pending session's processes; one sweep at a time. */
  sweep(): Promise<void> {
    this.sweeping ??= this.sweepOnce().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweepOnce(): Promise<void> {
    const entries = [...this.pending.values()];
    await Promise.all(entries.map((e) => this.lanes.run(() => this.end(e))));
  }

  private async end(e: LedgerEntry & { claimed?: boolean }): Promise<void> {
    const fields = { session: e.session, user: e.user, app: e.app, proc: e.proc, instance: e.instance, backend: e.place.backend, host: e.place.host, target: e.place.name };
    let present: boolean;
    try {
      present = await this.ender.endLeftovers(e.place, e.session, this.graceMs);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ENTRY_NOT_FOUND') {
        // A host or cluster this broker is not configured for: nothing here can ever reach it.
        this.log.warn('leftover session on a host this broker does not know: forgotten', { ...fields, error: err as Error });
      } else {
        this.log.warn('leftover session not ended yet: tried again at the next sweep', { ...fields, error: err as Error, sweepMs: this.sweepIntervalMs });
        return;
      }
      present = false;
    }
    if (present) this.log.info('leftover session ended', fields);
    else this.log.info('leftover session: its target is gone, and its processes with it', fields);
    this.pending.delete(e.session);
    // Only a dead broker's sessions: a session of this broker's own has had its end recorded.
    if (e.claimed) this.onEnded(e, present ? 'ended' : 'target-gone');
    await this.ledger.remove(e.session);
  }

  /** Pending sessions (not yet ended). */
  get size(): number {
    return this.pending.size;
  }

  /** Stops sweeping (waits for the sweep under way); this broker's ledger directory goes if empty. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping;
    await this.ledger.close();
  }
}

import type { LeftoverPlace } from '../backend/backend.js';
import { Limiter } from '../backend/pacing.js';
import { withTimeout } from '../backend/with-timeout.js';
import type { Logger } from '../log.js';
import type { LedgerEntry, SessionLedger } from './session-ledger.js';

/**
 * How a dead broker's session is over: its processes were ended, its target had gone with
 * them, or they cannot be ended from inside the target and are left to end with it.
 */
export type LeftoverOutcome = 'ended' | 'target-gone' | 'left-running';

export type LeftoverEnded = (entry: LedgerEntry, how: LeftoverOutcome) => void;

/** What ends a session's processes when the session that started them is gone. */
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
 * One leftover session's clean-up may take the kill grace and some engine calls; an engine or
 * cluster that accepts and never answers must not hold a lane (and the sweep) for good: past
 * this beyond the grace it is given up, and tried again at the next sweep.
 */
const END_TIMEOUT_MS = 30_000;

/** How long a stopping broker waits for a sweep under way; what it did not finish stays in the ledger. */
const STOP_WAIT_MS = 1_000;

/** An entry still to end, as this broker holds it. */
type Pending = LedgerEntry & {
  /** Left by a dead broker (claimed), rather than one of this broker's own sessions. */
  claimed?: boolean;
  /** Its failure was said once; later ones of the same entry go to the debug log. */
  warned?: boolean;
};

/**
 * The processes of sessions that no broker will end: those of brokers that died (claimed from
 * the ledger) and those of this broker's own sessions whose clean-up failed (the engine or
 * cluster was unreachable). Each is tried until done, then forgotten.
 */
export class Leftovers {
  /** Entries still to end, by session. */
  private readonly pending = new Map<string, Pending>();
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
    let claimed: LedgerEntry[] | undefined;
    try {
      claimed = await this.ledger.claimOrphans();
    } catch (err) {
      if (!this.claimFailing) this.log.warn('session ledger not read: tried again at the next sweep', { error: err as Error });
      this.claimFailing = true;
      return;
    }
    // Undefined: the ledger did not look (not yet safe to claim), which says nothing of an outage.
    if (claimed === undefined) return;
    this.claimFailing = false;
    if (claimed.length === 0) return;
    this.log.warn('sessions left by a broker that stopped without ending them: ending their processes', { sessions: claimed.length });
    for (const e of claimed) this.pending.set(e.session, { ...e, claimed: true });
  }

  /** Records a session before its process starts. */
  record(entry: LedgerEntry): Promise<void> {
    return this.ledger.add(entry);
  }

  /**
   * A session has ended (and its end is recorded): forgotten when its processes were ended, kept
   * and retried when they may not have been, marked so that a broker claiming it later does not
   * record its end a second time.
   */
  async ended(entry: LedgerEntry, processesEnded: boolean): Promise<void> {
    if (processesEnded) return this.ledger.remove(entry.session);
    const kept = { ...entry, endRecorded: true };
    this.pending.set(entry.session, kept);
    await this.ledger.add(kept);
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

  private async end(e: Pending): Promise<void> {
    const fields = { session: e.session, user: e.user, app: e.app, proc: e.proc, instance: e.instance, backend: e.place.backend, host: e.place.host, target: e.place.name };
    let present: boolean;
    try {
      present = await withTimeout(this.ender.endLeftovers(e.place, e.session, this.graceMs), this.graceMs + END_TIMEOUT_MS, 'ending a leftover session');
    } catch (err) {
      // No sweep will do better (the image has no shell for the scan): said once, as an error,
      // and forgotten, rather than a failing exec in the target at every sweep for good.
      if ((err as { code?: string }).code === 'ENTRY_CANNOT_REAP') {
        this.log.error('leftover session cannot be ended: its processes run until its container stops; dropped from the ledger', { ...fields, error: err as Error });
        this.pending.delete(e.session);
        if (e.claimed && !e.endRecorded) this.onEnded(e, 'left-running');
        await this.ledger.remove(e.session);
        return;
      }
      // A host or cluster this broker is not configured for is kept too: a broker that has it
      // may claim the entry once this one is gone.
      const unknownHost = (err as { code?: string }).code === 'ENTRY_NOT_FOUND';
      const msg = unknownHost ? 'leftover session on a host or cluster this broker does not have: kept' : 'leftover session not ended yet: tried again at the next sweep';
      if (e.warned) this.log.debug(msg, { ...fields, error: err as Error });
      else this.log.warn(msg, { ...fields, error: err as Error, sweepMs: this.sweepIntervalMs });
      e.warned = true;
      return;
    }
    if (present) this.log.info('leftover session ended', fields);
    else this.log.info('leftover session: its target is gone, and its processes with it', fields);
    this.pending.delete(e.session);
    // A dead broker's session whose end that broker never recorded.
    if (e.claimed && !e.endRecorded) this.onEnded(e, present ? 'ended' : 'target-gone');
    await this.ledger.remove(e.session);
  }

  /** Pending sessions (not yet ended). */
  get size(): number {
    return this.pending.size;
  }

  /** Stops sweeping (waits a moment for the sweep under way); what is left stays in the ledger for the next broker. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (this.sweeping) await withTimeout(this.sweeping, STOP_WAIT_MS, 'the leftover sweep').catch(() => undefined);
    await this.ledger.close();
  }
}

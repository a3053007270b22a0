import type { AuditTrail } from '../audit/audit-trail.js';
import { RetrySchedule } from '../backend/retry-schedule.js';
import { EntryError } from '../errors.js';
import type { Logger } from '../log.js';
import { type ControlMessage, EVERY_BROKER, type Revocation, type Store } from '../store/store.js';
import type { LiveSession } from './live-session.js';

/** Sessions checked against the stored revocations per round of store calls. */
const RECHECK_SLICE = 200;

/**
 * After a check the store failed, the next comes this soon, doubling up to the most: the link a
 * check is asked for on coming back may be the control link alone, the store's own still
 * reconnecting (0.5, 1, 2, 4, 8 s: a Redis that restarts is back within seconds).
 */
const RECHECK_RETRY_FIRST_MS = 500;
const RECHECK_RETRY_MAX_MS = 8_000;

/** Who the audit trail names for a session ended by a revocation found in the store, not heard of. */
export const STORED_REVOCATION = 'stored revocation';

/** Whether a revocation covers the token a session was admitted with, as the admission would refuse it now. */
export function revocationCovers(revocation: Revocation, session: Pick<LiveSession, 'user' | 'credential'>): boolean {
  const { issuedAt, tokenId } = session.credential;
  return 'jti' in revocation ? tokenId === revocation.jti : session.user === revocation.user && issuedAt < revocation.before;
}

/**
 * The sessions this broker holds: admission against its limits, the control channel (kills and
 * watches sent by any broker sharing the store), and the drain that ends them all.
 */
export class SessionTable {
  private readonly sessions = new Map<string, LiveSession>();
  private draining = false;
  /** Told each time a session leaves the table. */
  private readonly departures = new Set<() => void>();
  /** Sessions already ended for a revocation: heard of and then found in the store, they end once. */
  private readonly revoked = new WeakSet<LiveSession>();
  private recheckTimer: NodeJS.Timeout | undefined;
  /** The next check after one the store failed (see RECHECK_RETRY_FIRST_MS). */
  private retries: RetrySchedule | undefined;
  /** A check still on its way when the next is due is not doubled... */
  private rechecking = false;
  /** ...but one asked for meanwhile (the link back) runs once it is done: it may know more. */
  private recheckAgain = false;

  constructor(
    private readonly maxSessions: number,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Throws when no new session may start now (draining, at --max-sessions). */
  admissible(resume = false): void {
    if (this.draining) throw new EntryError('ENTRY_DRAINING');
    // A resume takes over a session already counted.
    if (!resume && this.sessions.size >= this.maxSessions) throw new EntryError('ENTRY_TOO_MANY_SESSIONS', `limit ${this.maxSessions}`);
  }

  get(id: string): LiveSession | undefined {
    return this.sessions.get(id);
  }

  /** Holds a session until the returned function is called. */
  readonly track = (s: LiveSession): (() => void) => {
    this.sessions.set(s.id, s);
    // Admitted before the drain began, here after its snapshot: it ends the same way.
    if (this.draining) void s.stop(new EntryError('ENTRY_DRAINING'));
    return () => {
      if (this.sessions.get(s.id) === s) this.sessions.delete(s.id);
      for (const told of this.departures) told();
    };
  };

  /**
   * Listens for kills and watches addressed to this broker, and for revocations, which go to
   * every broker at once (see EVERY_BROKER). A revocation's message is the fast path only: one
   * published while this broker's link to the store was down is lost, so the store's revocations
   * are checked against every live session when the link is back and every `recheckMs`.
   */
  listen(store: Store, brokerId: string, audit: AuditTrail, recheckMs = 0): void {
    const onMessage = (message: ControlMessage) => {
      if (message.type === 'revoke') {
        // The sessions admitted with a token it covers, as the admission would refuse it now.
        for (const session of this.sessions.values()) {
          if (revocationCovers(message.revocation, session)) this.revoke(session, message.by, audit);
        }
        return;
      }
      const session = this.sessions.get(message.sessionId);
      if (!session) return;
      if (message.type === 'watch') session.watch(message.until, message.by);
      else this.kill(session, new EntryError('ENTRY_KILLED', `by ${message.by}`), message.by, audit);
    };
    for (const [channel, name] of [[EVERY_BROKER, 'control channel for every broker'], [brokerId, 'control channel']] as const) {
      void store.subscribe(channel, onMessage).catch((err: unknown) => this.log.warn(`${name} not subscribed`, { error: err as Error }));
    }
    store.onControlResumed(() => void this.recheckRevocations(store, audit));
    if (recheckMs > 0) {
      this.recheckTimer = setInterval(() => void this.recheckRevocations(store, audit), recheckMs);
      this.recheckTimer.unref();
    }
  }

  /**
   * Ends every live session whose token the store says is revoked, as a revocation's message
   * would have. Sessions that share a token are asked about once; a store that fails has the
   * check tried again soon (RECHECK_RETRY_FIRST_MS, doubling), until one goes through.
   */
  async recheckRevocations(store: Store, audit: AuditTrail): Promise<void> {
    if (this.sessions.size === 0) return;
    if (this.rechecking) {
      this.recheckAgain = true;
      return;
    }
    this.rechecking = true;
    let failed = 0;
    let error: unknown;
    try {
      const sessions = [...this.sessions.values()].filter((s) => !this.revoked.has(s));
      for (let i = 0; i < sessions.length; i += RECHECK_SLICE) {
        const slice = sessions.slice(i, i + RECHECK_SLICE);
        const asked = new Map<string, Promise<boolean>>();
        const verdicts = await Promise.all(
          slice.map((s) => {
            const { tokenId, issuedAt } = s.credential;
            const key = JSON.stringify([tokenId ?? null, s.user, issuedAt]);
            let verdict = asked.get(key);
            if (!verdict) {
              verdict = store.isRevoked(tokenId, s.user, issuedAt).catch((err: unknown) => {
                failed++;
                error = err;
                return false;
              });
              asked.set(key, verdict);
            }
            return verdict;
          }),
        );
        slice.forEach((s, n) => {
          // Gone meanwhile (ended, or taken over by a resume): nothing to end.
          if (verdicts[n] && this.sessions.get(s.id) === s) this.revoke(s, STORED_REVOCATION, audit);
        });
      }
    } finally {
      this.rechecking = false;
    }
    this.retries ??= new RetrySchedule(() => this.recheckRevocations(store, audit), { backoffInitialMs: RECHECK_RETRY_FIRST_MS, backoffMaxMs: RECHECK_RETRY_MAX_MS });
    if (failed > 0) {
      // Said once per outage; the checks that follow it, at debug.
      const fields = { tokens: failed, error: error as Error };
      if (this.retries.failures === 0) this.log.warn('revocations not checked: shared store failed', fields);
      else this.log.debug('revocations not checked: shared store failed', fields);
      this.retries.failed();
    } else {
      this.retries.succeeded();
    }
    if (this.recheckAgain) {
      this.recheckAgain = false;
      await this.recheckRevocations(store, audit);
    }
  }

  /** Ends a session whose token was revoked, once however many times it is told. */
  private revoke(session: LiveSession, by: string, audit: AuditTrail): void {
    if (this.revoked.has(session)) return;
    this.revoked.add(session);
    this.kill(session, new EntryError('ENTRY_TOKEN_REVOKED', `by ${by}`), by, audit, 'token revoked');
  }

  /** Ends a session on another's word (an admin's kill, a revocation): logged and in the audit trail. */
  private kill(session: LiveSession, error: EntryError, by: string, audit: AuditTrail, reason?: string): void {
    this.log.info('session kill', { session: session.id, by, ...(reason ? { reason } : {}) });
    audit.record({ type: 'session.kill', sessionId: session.id, user: session.user, app: session.app, proc: session.proc, instance: session.instance, by });
    void session.stop(error);
  }

  /**
   * Refuses new sessions from now on, ends every live one with a CLOSE reason, and resolves once
   * none is left: sessions still starting (their exec ended as soon as it is open) and those
   * admitted before the drain but tracked after it included. The caller bounds the wait.
   */
  async drain(): Promise<void> {
    this.draining = true;
    clearInterval(this.recheckTimer);
    this.retries?.stop();
    await Promise.all([...this.sessions.values()].map((s) => s.stop(new EntryError('ENTRY_DRAINING'))));
    await this.emptied();
  }

  /**
   * Tells every session's client that it ends now (the broker exits before the drain is done);
   * resolves once each is told, or could not be.
   */
  async announceEnd(error: EntryError): Promise<void> {
    await Promise.all([...this.sessions.values()].map((s) => s.announce(error)));
  }

  private emptied(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.sessions.size > 0) return;
        this.departures.delete(check);
        resolve();
      };
      this.departures.add(check);
      check();
    });
  }
}

import type { AuditTrail } from '../audit/audit-trail.js';
import { EntryError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { LiveSession } from './exec-session.js';

/**
 * The sessions this broker holds: admission against its limits, the control channel (kills and
 * watches sent by any broker sharing the store), and the drain that ends them all.
 */
export class SessionTable {
  private readonly sessions = new Map<string, LiveSession>();
  private draining = false;

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
    return () => this.sessions.delete(s.id);
  };

  /** Listens for kills and watches addressed to this broker. */
  listen(store: Store, brokerId: string, audit: AuditTrail): void {
    void store
      .subscribe(brokerId, (message) => {
        const session = this.sessions.get(message.sessionId);
        if (!session) return;
        if (message.type === 'watch') {
          session.watch(message.until, message.by);
          return;
        }
        this.log.info('session kill', { session: message.sessionId, by: message.by });
        audit.record({ type: 'session.kill', sessionId: message.sessionId, user: session.user, app: session.app, proc: session.proc, instance: session.instance, by: message.by });
        void session.stop(new EntryError('ENTRY_KILLED', `by ${message.by}`));
      })
      .catch((err: unknown) => this.log.warn('control channel not subscribed', { error: err as Error }));
  }

  /** Refuses new sessions from now on and ends every live one with a CLOSE reason. */
  async drain(): Promise<void> {
    this.draining = true;
    await Promise.all([...this.sessions.values()].map((s) => s.stop(new EntryError('ENTRY_DRAINING'))));
  }
}

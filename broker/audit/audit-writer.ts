import type { Logger } from '../log.js';
import type { AuditEvent } from './events.js';

/**
 * Events held for the store while it cannot take them (Redis restarting, a partition). An event
 * is a few hundred bytes, at most about 5 KB (a command of 4,096 characters): 10,000 hold at most
 * 50 MB, minutes of a busy broker's trail. Past it new events go to the log only, counted.
 */
export const MAX_AUDIT_BACKLOG = 10_000;
/** Waits between tries while the store fails: doubling from the first to the last. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 10_000;
/** How long a broker that stops waits for its backlog to be stored. */
export const AUDIT_FLUSH_MS = 3_000;

/**
 * Writes audit events to the store one at a time, in order, and keeps what the store could not
 * take to try again: a trail with a gap where Redis was away is a trail that lies. A write that
 * timed out may have been stored all the same; tried again, it is stored twice, and readers skip
 * the second by its `id`.
 */
export class AuditWriter {
  private readonly queue: AuditEvent[] = [];
  private writing = false;
  private retryMs = RETRY_FIRST_MS;
  private timer: NodeJS.Timeout | undefined;
  private failingSince = 0;
  private dropped = 0;
  private idle: (() => void) | undefined;

  constructor(
    private readonly write: (event: AuditEvent) => Promise<void>,
    private readonly log: Logger,
  ) {}

  /** Events not yet stored. */
  get backlog(): number {
    return this.queue.length;
  }

  add(event: AuditEvent): void {
    if (this.queue.length >= MAX_AUDIT_BACKLOG) {
      if (this.dropped++ === 0) this.log.warn('audit backlog full: events go to the log only until the store takes them again', { backlog: this.queue.length });
      return;
    }
    this.queue.push(event);
    void this.pump();
  }

  /** Tries to store what is held, for at most `withinMs`; what is left is said in the log. */
  async flush(withinMs = AUDIT_FLUSH_MS): Promise<void> {
    if (this.queue.length > 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      const done = new Promise<void>((resolve) => (this.idle = resolve));
      void this.pump();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, withinMs)))]);
      clearTimeout(timer);
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queue.length > 0) this.log.warn('audit events not stored at stop (they are in this log)', { events: this.queue.length, dropped: this.dropped });
  }

  private async pump(): Promise<void> {
    if (this.writing || this.timer) return;
    this.writing = true;
    while (this.queue.length > 0) {
      try {
        await this.write(this.queue[0]!);
      } catch (err) {
        if (this.failingSince === 0) {
          this.failingSince = Date.now();
          this.log.warn('audit events not stored: held to try again', { error: err as Error, backlog: this.queue.length });
        }
        this.writing = false;
        this.timer = setTimeout(() => {
          this.timer = undefined;
          void this.pump();
        }, this.retryMs);
        this.timer.unref();
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
        return;
      }
      this.queue.shift();
      if (this.failingSince !== 0) {
        this.log.info('audit events stored again', { awayMs: Date.now() - this.failingSince, backlog: this.queue.length, dropped: this.dropped });
        this.failingSince = 0;
        this.dropped = 0;
        this.retryMs = RETRY_FIRST_MS;
      }
    }
    this.writing = false;
    this.idle?.();
    this.idle = undefined;
  }
}

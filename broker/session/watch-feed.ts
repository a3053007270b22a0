import type { Store } from '../store/store.js';
import type { SessionTap } from './observer.js';
import type { OutputStream } from './types.js';

/**
 * What a watched session publishes: each message is one byte of kind then the payload.
 * Watchers on any broker subscribe to the session's channel in the store.
 */
export const FEED_STDOUT = 0;
export const FEED_STDERR = 1;
/** The session ended; the payload is the reason line. */
export const FEED_END = 2;

/** How long one watch request keeps the feed on; watchers renew it every third of this. */
export const WATCH_LEASE_MS = 30_000;

export function feedMessage(kind: number, data: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(data.length + 1);
  buf[0] = kind;
  buf.set(data, 1);
  return buf;
}

/** Publishes a session's output while someone watches it; costs nothing while nobody does. */
export class WatchFeed {
  private until = 0;
  private readonly watchers = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly sessionId: string,
  ) {}

  /** Turns the feed on (or keeps it on) until `until`; true when `by` is a new watcher. */
  lease(until: number, by: string): boolean {
    this.until = Math.max(this.until, until);
    const isNew = !this.watchers.has(by);
    this.watchers.add(by);
    return isNew;
  }

  get active(): boolean {
    // No clock read on the output path of a session nobody has ever watched.
    return this.until !== 0 && Date.now() < this.until;
  }

  tap(): SessionTap {
    return {
      output: (stream: OutputStream, data: Uint8Array) => {
        if (this.active) void this.store.publishOutput(this.sessionId, feedMessage(stream === 'stderr' ? FEED_STDERR : FEED_STDOUT, data)).catch(() => undefined);
      },
    };
  }

  end(reason: string): void {
    if (this.watchers.size > 0) void this.store.publishOutput(this.sessionId, feedMessage(FEED_END, Buffer.from(reason))).catch(() => undefined);
  }
}

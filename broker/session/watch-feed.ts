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

/**
 * Output on its way to the store at most, per watched session. A store that stops answering
 * without closing its connection (a Redis paused, a network partition) would otherwise queue
 * every chunk of a busy session in the broker: gigabytes in seconds. Past this the feed skips
 * output and says so; 4 MiB is a few seconds of a fast terminal, well past any store's lag.
 * Each message counts its objects too (FEED_PUBLISH_COST_BYTES): a process printing a byte at a
 * time would otherwise queue millions of them.
 */
export const FEED_MAX_PENDING_BYTES = 4 * 1024 * 1024;

/**
 * What one publish waiting on the store holds beyond its message's bytes. Measured against a
 * real redis-server stopped with SIGSTOP, the broker's client options (its command timeout
 * included), after a full collection: 2.3-2.4 KB of heap per pending one-byte message, for
 * 1,500 to 15,000 of them, and 64 bytes of buffers (an ioredis command with its promise, its
 * timeout timer and its queue entry, the chunk written, this feed's promise chain). Rounded up
 * to 2.5 KiB. The 256 bytes counted before let some 36 MiB of heap wait under a bound of 4 MiB.
 */
export const FEED_PUBLISH_COST_BYTES = 2_560;
const SKIPPED = Buffer.from('\r\n[entry: output skipped: the shared store fell behind]\r\n');

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
  private pendingBytes = 0;
  private skipped = false;
  /** Why the session ended, once it has. */
  private endLine: string | undefined;

  constructor(
    private readonly store: Store,
    private readonly sessionId: string,
  ) {}

  /**
   * Turns the feed on (or keeps it on) until `until`; true when `by` is a new watcher of a
   * session that has not ended. A session still delivering its end to its client (see
   * ResumableTerminal) can be watched after it: the watcher is told the end at once, and the
   * session's user is not told of a watcher after its EXIT.
   */
  lease(until: number, by: string): boolean {
    this.until = Math.max(this.until, until);
    const isNew = !this.watchers.has(by);
    this.watchers.add(by);
    if (this.endLine !== undefined) {
      this.publish(feedMessage(FEED_END, Buffer.from(this.endLine)));
      return false;
    }
    return isNew;
  }

  get active(): boolean {
    // No clock read on the output path of a session nobody has ever watched.
    return this.until !== 0 && Date.now() < this.until;
  }

  tap(): SessionTap {
    return {
      output: (stream: OutputStream, data: Uint8Array) => {
        if (!this.active) return;
        if (this.pendingBytes + data.length + FEED_PUBLISH_COST_BYTES > FEED_MAX_PENDING_BYTES) {
          this.skipped = true;
          return;
        }
        if (this.skipped) {
          this.skipped = false;
          this.publish(feedMessage(FEED_STDOUT, SKIPPED));
        }
        this.publish(feedMessage(stream === 'stderr' ? FEED_STDERR : FEED_STDOUT, data));
      },
    };
  }

  end(reason: string): void {
    this.endLine = reason;
    if (this.watchers.size > 0) this.publish(feedMessage(FEED_END, Buffer.from(reason)));
  }

  private publish(message: Buffer): void {
    const bytes = message.length + FEED_PUBLISH_COST_BYTES;
    this.pendingBytes += bytes;
    void this.store
      .publishOutput(this.sessionId, message)
      .catch(() => {
        // Lost on its way to the watchers (the store unreachable): they are told some output
        // was left out, as when they fall behind. The session itself goes on.
        this.skipped = true;
      })
      .finally(() => (this.pendingBytes -= bytes));
  }
}

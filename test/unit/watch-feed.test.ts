import { describe, expect, it } from 'vitest';
import { FEED_END, FEED_MAX_PENDING_BYTES, FEED_PUBLISH_COST_BYTES, FEED_STDOUT, WatchFeed } from '../../broker/session/watch-feed.js';
import { MemoryStore } from '../../broker/store/memory-store.js';

/** A store whose publishes hang until released, as a Redis that stopped answering. */
class StalledStore extends MemoryStore {
  published: Buffer[] = [];
  private release: Array<() => void> = [];
  stalled = true;
  override async publishOutput(_sessionId: string, message: Buffer): Promise<void> {
    if (this.stalled) await new Promise<void>((r) => this.release.push(r));
    this.published.push(message);
  }
  answer(): void {
    this.stalled = false;
    for (const r of this.release.splice(0)) r();
  }
  get waiting(): number {
    return this.release.length;
  }
}

const CHUNK = Buffer.alloc(64 * 1024, 0x79);

describe('a watched session\'s feed', () => {
  it('holds at most FEED_MAX_PENDING_BYTES for a store that does not answer, then says what it skipped', async () => {
    const store = new StalledStore();
    const feed = new WatchFeed(store, 's1');
    feed.lease(Date.now() + 60_000, 'admin');
    const tap = feed.tap();
    // 10 MiB of output while the store hangs.
    for (let i = 0; i < 160; i++) tap.output?.('stdout', CHUNK);
    expect(store.waiting * (CHUNK.length + 1)).toBeLessThanOrEqual(FEED_MAX_PENDING_BYTES);
    expect(store.waiting).toBeGreaterThan(0);
    store.answer();
    await new Promise((r) => setTimeout(r, 10));
    const before = store.published.length;
    tap.output?.('stdout', Buffer.from('after'));
    await new Promise((r) => setTimeout(r, 10));
    const next = store.published.slice(before).map((m) => [m[0], m.subarray(1).toString()]);
    expect(next).toEqual([
      [FEED_STDOUT, '\r\n[entry: output skipped: the shared store fell behind]\r\n'],
      [FEED_STDOUT, 'after'],
    ]);
  });

  it('holds no more messages than FEED_MAX_PENDING_BYTES pays for, each with its objects, when the output comes a byte at a time', () => {
    const store = new StalledStore();
    const feed = new WatchFeed(store, 's4');
    feed.lease(Date.now() + 60_000, 'admin');
    const tap = feed.tap();
    const byte = Buffer.from('x');
    for (let i = 0; i < 100_000; i++) tap.output?.('stdout', byte);
    expect(store.waiting).toBeGreaterThan(0);
    expect(store.waiting * (byte.length + 1 + FEED_PUBLISH_COST_BYTES)).toBeLessThanOrEqual(FEED_MAX_PENDING_BYTES);
  });

  it('says output was skipped after a publish the store refused, before the next output', async () => {
    const published: Buffer[] = [];
    let fail = true;
    const store = new (class extends MemoryStore {
      override async publishOutput(_sessionId: string, message: Buffer): Promise<void> {
        if (fail) throw new Error('connection lost');
        published.push(message);
      }
    })();
    const feed = new WatchFeed(store, 's2');
    feed.lease(Date.now() + 60_000, 'admin');
    const tap = feed.tap();
    tap.output?.('stdout', Buffer.from('lost'));
    await new Promise((r) => setImmediate(r));
    fail = false;
    tap.output?.('stdout', Buffer.from('after'));
    await new Promise((r) => setImmediate(r));
    expect(published.map((m) => [m[0], m.subarray(1).toString()])).toEqual([
      [FEED_STDOUT, '\r\n[entry: output skipped: the shared store fell behind]\r\n'],
      [FEED_STDOUT, 'after'],
    ]);
  });

  it('tells a watcher who comes after the end that the session ended, and does not count it as new', async () => {
    const store = new StalledStore();
    store.answer();
    const feed = new WatchFeed(store, 's3');
    expect(feed.lease(Date.now() + 60_000, 'early')).toBe(true);
    feed.end('exited with status 0');
    // One still delivering its end to its client: watched after its EXIT.
    expect(feed.lease(Date.now() + 60_000, 'late')).toBe(false);
    await new Promise((r) => setTimeout(r, 10));
    expect(store.published.map((m) => [m[0], m.subarray(1).toString()])).toEqual([
      [FEED_END, 'exited with status 0'],
      [FEED_END, 'exited with status 0'],
    ]);
  });

  it('publishes nothing while nobody watches', () => {
    const store = new StalledStore();
    new WatchFeed(store, 's2').tap().output?.('stdout', CHUNK);
    expect(store.waiting).toBe(0);
  });
});

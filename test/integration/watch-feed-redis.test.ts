import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { FEED_MAX_PENDING_BYTES, WatchFeed } from '../../broker/session/watch-feed.js';
import { mb, summaryLine } from '../helpers/hardening.js';
import { storeAt, TestRedis } from '../helpers/redis.js';

// A full collection on demand, for the heap a stalled feed holds (the workers run without --expose-gc).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Output a byte at a time: far more messages than the bound lets wait. */
const FLOOD = 100_000;
/** Room for the collector's slack and the client's own growth beside what the bound counts. */
const HEAP_SLACK_BYTES = 2 * 1024 * 1024;

describe("a watched session's feed on a Redis that stopped answering", () => {
  const cleanup: Array<() => Promise<unknown> | unknown> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('holds no more heap than FEED_MAX_PENDING_BYTES for the publishes left pending, output a byte at a time', async () => {
    const redis = new TestRedis();
    await redis.start();
    cleanup.push(() => redis.stop());
    const { client, store } = storeAt(redis.url);
    await store.connect();
    cleanup.push(() => store.close());
    const feed = new WatchFeed(store, 's1');
    feed.lease(Date.now() + 60_000, 'admin');
    const tap = feed.tap();
    // The publish path's code and the connection's buffers, before the count starts.
    tap.output?.('stdout', Buffer.from('warm'));
    await client.ping();
    redis.pause();
    cleanup.push(() => redis.unpause());
    const byte = Buffer.from('x');
    gc();
    const before = process.memoryUsage().heapUsed;
    // Well inside the store's command timeout (5 s), which would fail them all and free them.
    for (let i = 0; i < FLOOD; i++) tap.output?.('stdout', byte);
    gc();
    const held = process.memoryUsage().heapUsed - before;
    console.log(summaryLine('watch-feed-redis', { heldMB: mb(held) }));
    expect(held, `${mb(held)} MiB of heap held`).toBeLessThanOrEqual(FEED_MAX_PENDING_BYTES + HEAP_SLACK_BYTES);
  });
});

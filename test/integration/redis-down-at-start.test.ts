import { afterEach, describe, expect, it } from 'vitest';
import type { ControlMessage } from '../../broker/store/store.js';
import { freePort, storeAt, TestRedis } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The store of a broker that started while Redis was down, and Redis coming up later. */
describe('the Redis store when Redis is down at start', () => {
  let redis: TestRedis;
  const cleanup: Array<() => Promise<unknown> | unknown> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function downRedis(): Promise<TestRedis> {
    redis = new TestRedis();
    redis.port = await freePort();
    cleanup.push(() => redis.stop());
    return redis;
  }

  it('subscribes to its control channel once Redis comes up: a kill message arrives', async () => {
    await downRedis();
    const store = storeAt(redis.url).store;
    cleanup.push(() => store.close());
    await store.connect().catch(() => undefined);
    const got: ControlMessage[] = [];
    const first = store.subscribe('b1', (m) => got.push(m));
    // The first SUBSCRIBE is refused while Redis is down (the caller logs it).
    await expect(first).rejects.toThrow();
    await sleep(500);

    await redis.start();
    const publisher = storeAt(redis.url).store;
    cleanup.push(() => publisher.close());
    await publisher.connect();
    const deadline = Date.now() + 10_000;
    while (got.length === 0 && Date.now() < deadline) {
      await publisher.publish('b1', { type: 'kill', sessionId: 's1', by: 'admin' });
      await sleep(200);
    }
    expect(got[0]).toMatchObject({ type: 'kill', sessionId: 's1', by: 'admin' });
  });

  it('closes the client of a watch whose subscription failed', async () => {
    await downRedis();
    const store = storeAt(redis.url).store;
    cleanup.push(() => store.close());
    await expect(store.subscribeOutput('s1', () => undefined)).rejects.toThrow();

    await redis.start();
    const raw = redis.client();
    cleanup.push(() => raw.disconnect());
    // Past the longest reconnect wait (2 s): a client left behind would have connected by now.
    await sleep(3_000);
    const clients = ((await raw.client('LIST')) as string).trim().split('\n');
    expect(clients, clients.join('\n')).toHaveLength(1);
  });
});

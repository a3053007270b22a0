import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisClient } from '../../broker/store/redis-connection.js';
import { stopChild } from '../helpers/child.js';
import { freePort, TestRedis } from '../helpers/redis.js';

/**
 * What a --redis-url says besides its address (the database, the password) holds through a real
 * Sentinel too: a broker told `redis://:pw@…/5` and Sentinels writes where the URL says.
 */
describe('a Redis URL through Sentinel', () => {
  const redis = new TestRedis();
  let sentinel: ChildProcess | undefined;
  let sentinelPort = 0;
  const dir = mkdtempSync(join(tmpdir(), 'entry-sentinel-'));

  beforeAll(async () => {
    await redis.start();
    sentinelPort = await freePort();
    const conf = join(dir, 'sentinel.conf');
    // A Sentinel rewrites its file: one of its own in the test's directory.
    writeFileSync(conf, `port ${sentinelPort}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor shop 127.0.0.1 ${redis.port} 1\n`);
    sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    // Asked until it answers with the master it monitors: it starts in its own time.
    const probe = new Redis({ port: sentinelPort, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    const deadline = Date.now() + 10_000;
    try {
      for (;;) {
        try {
          if (probe.status !== 'ready') await probe.connect();
          const master = (await probe.call('SENTINEL', 'get-master-addr-by-name', 'shop')) as string[] | null;
          if (master?.[1] === String(redis.port)) return;
        } catch {
          probe.disconnect();
        }
        if (Date.now() > deadline) throw new Error('the Sentinel did not come up');
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      probe.disconnect();
    }
  });
  afterAll(async () => {
    await stopChild(sentinel);
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes to the database the URL names, not database 0', async () => {
    const client = createRedisClient({ url: 'redis://127.0.0.1/5', sentinels: [`127.0.0.1:${sentinelPort}`], sentinelName: 'shop', cluster: false }) as Redis;
    client.on('error', () => undefined);
    const direct = redis.client();
    try {
      await client.connect();
      await client.set('entry-test-key', 'through-sentinel');
      expect(await direct.select(5).then(() => direct.get('entry-test-key'))).toBe('through-sentinel');
      expect(await direct.select(0).then(() => direct.get('entry-test-key'))).toBeNull();
    } finally {
      client.disconnect();
      direct.disconnect();
    }
  });
});

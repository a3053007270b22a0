import { afterEach, describe, expect, it } from 'vitest';
import { AuditTrail } from '../../broker/audit/audit-trail.js';
import { createLogger } from '../../broker/log.js';
import { storeAt, TestRedis } from '../helpers/redis.js';

/** The audit trail on a real Redis that goes away and comes back: what happened meanwhile is stored once. */
describe('the audit trail while Redis is away', () => {
  const cleanup: Array<() => Promise<unknown> | unknown> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function setUp() {
    const redis = new TestRedis();
    await redis.start();
    cleanup.push(() => redis.stop());
    const { store } = storeAt(redis.url);
    await store.connect();
    cleanup.push(() => store.close());
    const lines: string[] = [];
    const trail = new AuditTrail(store, createLogger('info', (l) => lines.push(l)), { brokerId: 'b1', maxEvents: 1000, alertRules: [] });
    const who = { sessionId: 's1', user: 'alice', source: '127.0.0.1', app: 'shop', proc: 'web', instance: '1', container: 'c1', host: 'local' };
    const typed = (line: string) => trail.record({ type: 'command', ...who, line, exact: true });
    const stored = async () => (await store.queryAudit({ limit: 100, type: 'command' })).events.map((e) => e.line).reverse();
    return { redis, store, trail, lines, typed, stored };
  }

  it('stores the events of a Redis restart, in order, once it is back', async () => {
    const { redis, trail, typed, stored } = await setUp();
    await redis.stop();
    typed('during-1');
    typed('during-2');
    await expect.poll(() => trail.backlog).toBe(2);
    await redis.start();
    typed('after');
    // A Redis without persistence comes back empty: what it holds is what the trail held for it.
    await expect.poll(stored, { timeout: 15_000 }).toEqual(['during-1', 'during-2', 'after']);
    expect(trail.backlog).toBe(0);
  }, 30_000);

  it('reads an event once that a paused Redis stored late and the trail stored again', async () => {
    const { redis, store, trail, lines, typed, stored } = await setUp();
    redis.pause();
    cleanup.push(() => redis.unpause());
    typed('while-paused');
    // The write times out (the store's command timeout, 5 s), and is held to try again.
    await expect.poll(() => lines.some((l) => l.includes('audit events not stored: held to try again')), { timeout: 10_000 }).toBe(true);
    redis.unpause();
    await expect.poll(() => trail.backlog, { timeout: 15_000 }).toBe(0);
    expect(await stored()).toEqual(['while-paused']);
    // Stored twice: the timed-out write went through when Redis went on, and the second try too.
    const client = redis.client();
    cleanup.push(() => client.quit());
    const raw = await client.xrange('{entry}:audit', '-', '+');
    expect(raw.length).toBeGreaterThanOrEqual(2);
    expect((await store.queryAudit({ limit: 100 })).events).toHaveLength(1);
  }, 40_000);
});

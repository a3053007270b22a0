import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../broker/log.js';
import { SessionRegistry } from '../../broker/session/registry.js';
import { RedisStore } from '../../broker/store/redis-store.js';
import type { SessionRecord, Store } from '../../broker/store/store.js';
import { storeAt, TestRedis } from '../helpers/redis.js';

/**
 * The session registry on a real Redis: a session killed while its first write is on its way
 * (an admin's kill arriving during `add`) must not stay listed, nor be heartbeated for ever.
 */

const redis = new TestRedis();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TTL_MS = 600; // a heartbeat every 200 ms

/** The store, with its session writes (first ones and heartbeats) held until released, and counted. */
function gated(store: Store) {
  let gate: Promise<void> | undefined;
  let open: () => void = () => undefined;
  const counts = { puts: 0 };
  const wrapped = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'putSession') {
        return async (record: SessionRecord, ttlMs: number) => {
          counts.puts++;
          if (gate) await gate;
          return target.putSession(record, ttlMs);
        };
      }
      if (prop === 'refreshSessions') {
        return async (records: readonly SessionRecord[], ttlMs: number, userSlots: boolean) => {
          counts.puts++;
          if (gate) await gate;
          return target.refreshSessions(records, ttlMs, userSlots);
        };
      }
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    store: wrapped,
    counts,
    hold: () => (gate = new Promise((resolve) => (open = resolve))),
    release: () => {
      gate = undefined;
      open();
    },
  };
}

describe('the session registry on Redis: a kill while the session is being registered', () => {
  let store: RedisStore;

  beforeAll(async () => {
    await redis.start();
    store = storeAt(redis.url).store;
    await store.connect();
  }, 30_000);
  afterAll(async () => {
    await store?.close();
    await redis.stop();
  });

  it('leaves no record, no user slot and no heartbeat', async () => {
    const g = gated(store);
    const registry = new SessionRegistry(g.store, { brokerId: 'b1', ttlMs: TTL_MS, maxUserSessions: 1 }, createLogger('error', () => undefined));
    const id = `s-${Math.random().toString(36).slice(2)}`;
    await registry.reserve('bob', id);
    g.hold();
    const before = g.counts.puts;
    const adding = registry.add(
      { id, user: 'bob', source: '127.0.0.1', app: 'a', proc: 'web', instance: '1', container: 'c1', dockerHost: 'local', broker: 'b1', startedAt: new Date().toISOString(), bytesIn: 0, bytesOut: 0, command: null, tty: false },
      () => ({ bytesIn: 0, bytesOut: 0 }),
    );
    // The first write is on its way, and held.
    await expect.poll(() => g.counts.puts).toBeGreaterThan(before);
    await registry.remove('bob', id);
    g.release();
    await adding;
    const puts = g.counts.puts;
    // Well past the TTL: a heartbeat would have written several times and kept the record.
    await sleep(TTL_MS * 2);
    expect(g.counts.puts, 'writes after the session was removed').toBe(puts);
    expect(await store.getSession(id)).toBeUndefined();
    expect((await store.listSessions()).map((s) => s.id)).not.toContain(id);
    // The user's slot is free again.
    await registry.reserve('bob', `${id}-next`);
    await registry.remove('bob', `${id}-next`);
  });
});

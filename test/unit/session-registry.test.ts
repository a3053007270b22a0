import { describe, expect, it } from 'vitest';
import { createLogger } from '../../broker/log.js';
import { SessionRegistry } from '../../broker/session/registry.js';
import { MemoryStore } from '../../broker/store/memory-store.js';
import type { SessionRecord } from '../../broker/store/store.js';

/** A memory store whose session writes can be held, and that counts them. */
class GatedStore extends MemoryStore {
  puts = 0;
  private gate: Promise<void> | undefined;
  private open: () => void = () => undefined;

  holdWrites(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }
  releaseWrites(): void {
    this.gate = undefined;
    this.open();
  }
  override async putSession(record: SessionRecord, ttlMs: number): Promise<void> {
    this.puts++;
    if (this.gate) await this.gate;
    return super.putSession(record, ttlMs);
  }
}

const record = (id: string): SessionRecord => ({
  id,
  user: 'alice',
  source: '127.0.0.1',
  app: 'a',
  proc: 'web',
  instance: '1',
  container: 'c1',
  dockerHost: 'local',
  broker: 'b1',
  startedAt: new Date().toISOString(),
  bytesIn: 0,
  bytesOut: 0,
  command: null,
  tty: true,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TTL_MS = 300; // a heartbeat every 100 ms

describe('SessionRegistry', () => {
  const log = createLogger('error', () => undefined);

  it('heartbeats a session until it is removed', async () => {
    const store = new GatedStore();
    const registry = new SessionRegistry(store, { brokerId: 'b1', ttlMs: TTL_MS, maxUserSessions: 0 }, log);
    await registry.add(record('s1'), () => ({ bytesIn: 5, bytesOut: 7 }));
    await sleep(250);
    expect(store.puts).toBeGreaterThanOrEqual(2);
    expect((await store.getSession('s1'))?.bytesOut).toBe(7);
    await registry.remove('alice', 's1');
    const after = store.puts;
    await sleep(350);
    expect(store.puts).toBe(after);
    expect(await store.getSession('s1')).toBeUndefined();
  });

  it('lets a remove made while the add is being written win: no record, no heartbeat', async () => {
    const store = new GatedStore();
    const registry = new SessionRegistry(store, { brokerId: 'b1', ttlMs: TTL_MS, maxUserSessions: 0 }, log);
    store.holdWrites();
    const adding = registry.add(record('s2'), () => ({ bytesIn: 0, bytesOut: 0 }));
    await sleep(10);
    // An admin's kill ends the session while its first write is still on its way.
    await registry.remove('alice', 's2');
    store.releaseWrites();
    await adding;
    const after = store.puts;
    await sleep(400);
    expect(store.puts, 'heartbeats after the session was removed').toBe(after);
    expect(await store.getSession('s2')).toBeUndefined();
    expect(await store.listSessions()).toEqual([]);
  });

  it('takes back a heartbeat that was on its way when the session was removed', async () => {
    const store = new GatedStore();
    const registry = new SessionRegistry(store, { brokerId: 'b1', ttlMs: TTL_MS, maxUserSessions: 0 }, log);
    await registry.add(record('s3'), () => ({ bytesIn: 0, bytesOut: 0 }));
    store.holdWrites();
    const puts = store.puts;
    // Wait for a heartbeat to start and be held.
    for (let i = 0; i < 50 && store.puts === puts; i++) await sleep(10);
    expect(store.puts).toBeGreaterThan(puts);
    await registry.remove('alice', 's3');
    store.releaseWrites();
    await sleep(50);
    expect(await store.getSession('s3')).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { createLogger } from '../../broker/log.js';
import { HEARTBEAT_SLICE, SessionRegistry } from '../../broker/session/registry.js';
import { MemoryStore } from '../../broker/store/memory-store.js';
import type { SessionRecord } from '../../broker/store/store.js';

/** A memory store whose session writes (first ones and heartbeats) can be held, and that counts them. */
class GatedStore extends MemoryStore {
  puts = 0;
  /** Heartbeat calls, with how many records each carried. */
  beats: number[] = [];
  failBeats = false;
  failPuts = false;
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
    if (this.failPuts) throw new Error('store down');
    return super.putSession(record, ttlMs);
  }
  override async refreshSessions(records: readonly SessionRecord[], ttlMs: number, userSlots: boolean): Promise<void> {
    this.puts++;
    this.beats.push(records.length);
    if (this.gate) await this.gate;
    if (this.failBeats) throw new Error('store down');
    return super.refreshSessions(records, ttlMs, userSlots);
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
    const puts = store.puts;
    const adding = registry.add(record('s2'), () => ({ bytesIn: 0, bytesOut: 0 }));
    // The first write is on its way, and held.
    await expect.poll(() => store.puts).toBeGreaterThan(puts);
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
    await expect.poll(() => store.puts).toBeGreaterThan(puts);
    await registry.remove('alice', 's3');
    store.releaseWrites();
    await sleep(50);
    expect(await store.getSession('s3')).toBeUndefined();
  });

  it('lists a session whose first write failed once the store answers again', async () => {
    const store = new GatedStore();
    const registry = new SessionRegistry(store, { brokerId: 'b1', ttlMs: TTL_MS, maxUserSessions: 0 }, log);
    store.failPuts = true;
    await expect(registry.add(record('s6'), () => ({ bytesIn: 1, bytesOut: 2 }))).rejects.toMatchObject({ code: 'ENTRY_STORE_UNAVAILABLE' });
    expect(await store.getSession('s6')).toBeUndefined();
    await expect.poll(async () => (await store.getSession('s6'))?.bytesOut).toBe(2);
    await registry.remove('alice', 's6');
    expect(await store.getSession('s6')).toBeUndefined();
  });

  it('holds a live session\'s slot again after the store lost it, and none of a session removed while its beat was on its way', async () => {
    const store = new GatedStore();
    const registry = new SessionRegistry(store, { brokerId: 'b1', ttlMs: TTL_MS, maxUserSessions: 1 }, log);
    await registry.reserve('alice', 's7');
    await registry.add(record('s7'), () => ({ bytesIn: 0, bytesOut: 0 }));
    // The store forgets the slot (a Redis restarted); the next beat puts it back.
    await store.releaseUserSlot('alice', 's7');
    const beats = store.beats.length;
    await expect.poll(() => store.beats.length).toBeGreaterThan(beats);
    await expect(registry.reserve('alice', 'other')).rejects.toMatchObject({ code: 'ENTRY_USER_SESSION_LIMIT' });
    // Ended while a beat carrying it is held: its slot is free once the beat is done.
    store.holdWrites();
    const held = store.beats.length;
    await expect.poll(() => store.beats.length).toBeGreaterThan(held);
    await registry.remove('alice', 's7');
    store.releaseWrites();
    await sleep(50);
    await registry.reserve('alice', 'next');
  });

  it('beats for all its sessions together, a slice of records per store call', async () => {
    const store = new GatedStore();
    const registry = new SessionRegistry(store, { brokerId: 'b1', ttlMs: TTL_MS, maxUserSessions: 0 }, log);
    const count = HEARTBEAT_SLICE * 2 + 1;
    for (let i = 0; i < count; i++) await registry.add(record(`m${i}`), () => ({ bytesIn: i, bytesOut: 2 * i }));
    await expect.poll(() => store.beats.length).toBeGreaterThanOrEqual(3);
    // One beat: two full slices and the one left over, each record once.
    expect(store.beats.slice(0, 3)).toEqual([HEARTBEAT_SLICE, HEARTBEAT_SLICE, 1]);
    expect((await store.getSession(`m${count - 1}`))?.bytesOut).toBe(2 * (count - 1));
    for (let i = 0; i < count; i++) await registry.remove('alice', `m${i}`);
    const after = store.beats.length;
    await sleep(250);
    expect(store.beats.length, 'beats with no session left').toBe(after);
  });

  it('says once per beat how many sessions a failing store left unrefreshed, and keeps beating', async () => {
    const store = new GatedStore();
    const lines: string[] = [];
    const registry = new SessionRegistry(store, { brokerId: 'b1', ttlMs: TTL_MS, maxUserSessions: 0 }, createLogger('warn', (l) => lines.push(l)));
    for (let i = 0; i < 3; i++) await registry.add(record(`f${i}`), () => ({ bytesIn: 0, bytesOut: 0 }));
    store.failBeats = true;
    await expect.poll(() => store.beats.length).toBeGreaterThanOrEqual(2);
    store.failBeats = false;
    const warnings = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'session heartbeat failed');
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.length).toBeLessThanOrEqual(store.beats.length);
    expect(warnings[0]?.['sessions']).toBe(3);
    const beats = store.beats.length;
    await expect.poll(() => store.beats.length).toBeGreaterThan(beats);
    expect(store.beats.length).toBeGreaterThan(beats);
    for (let i = 0; i < 3; i++) await registry.remove('alice', `f${i}`);
  });

  it('does not start a beat while the last one is still on its way', async () => {
    const store = new GatedStore();
    const registry = new SessionRegistry(store, { brokerId: 'b1', ttlMs: TTL_MS, maxUserSessions: 0 }, log);
    await registry.add(record('h1'), () => ({ bytesIn: 0, bytesOut: 0 }));
    store.holdWrites();
    for (let i = 0; i < 50 && store.beats.length === 0; i++) await sleep(10);
    expect(store.beats).toHaveLength(1);
    // Three more intervals pass with the store not answering: no beat piles up behind it.
    await sleep(350);
    expect(store.beats).toHaveLength(1);
    store.releaseWrites();
    for (let i = 0; i < 50 && store.beats.length === 1; i++) await sleep(10);
    expect(store.beats.length).toBeGreaterThan(1);
    await registry.remove('alice', 'h1');
  });
});

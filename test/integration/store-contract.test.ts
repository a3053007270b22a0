import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../broker/audit/events.js';
import { placeKey } from '../../broker/ledger/session-ledger.js';
import { MemoryStore } from '../../broker/store/memory-store.js';
import { createRedisClient } from '../../broker/store/redis-connection.js';
import { RedisStore } from '../../broker/store/redis-store.js';
import type { ControlMessage, SessionRecord, Store } from '../../broker/store/store.js';
import { TestRedis } from '../helpers/redis.js';

const redis = new TestRedis();
beforeAll(() => redis.start());
afterAll(() => redis.stop());

const record = (id: string, user = 'alice'): SessionRecord => ({
  id,
  user,
  source: '127.0.0.1',
  app: 'shop',
  proc: 'web',
  instance: '1',
  container: 'c0ffee',
  dockerHost: 'local',
  broker: 'b1',
  startedAt: new Date().toISOString(),
  bytesIn: 1,
  bytesOut: 2,
  command: null,
  tty: true,
});

const until = async (check: () => boolean, what: string) => {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

const implementations: Array<[string, () => Promise<Store>]> = [
  ['MemoryStore', async () => new MemoryStore()],
  [
    'RedisStore',
    async () => {
      const s = new RedisStore(createRedisClient({ url: redis.url, sentinels: [], sentinelName: undefined, cluster: false }));
      await s.connect();
      return s;
    },
  ],
];

describe.each(implementations)('the Store contract: %s', (_name, make) => {
  let store: Store;
  const uniq = () => Math.random().toString(36).slice(2);

  beforeAll(async () => {
    store = await make();
  });
  afterAll(() => store.close());

  it('hands a ticket out once', async () => {
    const k = uniq();
    await store.putTicket(k, 'v', 10_000);
    expect(await store.takeTicket(k)).toBe('v');
    expect(await store.takeTicket(k)).toBeUndefined();
  });

  it('hands a ticket to exactly one of many concurrent takers', async () => {
    const k = uniq();
    await store.putTicket(k, 'once', 10_000);
    const got = await Promise.all(Array.from({ length: 20 }, () => store.takeTicket(k)));
    expect(got.filter((v) => v === 'once')).toHaveLength(1);
  });

  it('expires tickets', async () => {
    const k = uniq();
    await store.putTicket(k, 'v', 50);
    await new Promise((r) => setTimeout(r, 120));
    expect(await store.takeTicket(k)).toBeUndefined();
  });

  it('registers, lists, refreshes and removes sessions', async () => {
    const id = uniq();
    await store.putSession(record(id), 10_000);
    expect((await store.getSession(id))?.app).toBe('shop');
    expect((await store.listSessions()).map((s) => s.id)).toContain(id);
    await store.putSession({ ...record(id), bytesOut: 99 }, 10_000);
    expect((await store.getSession(id))?.bytesOut).toBe(99);
    await store.removeSession(id);
    expect(await store.getSession(id)).toBeUndefined();
    expect((await store.listSessions()).map((s) => s.id)).not.toContain(id);
  });

  it('forgets sessions whose heartbeats stop', async () => {
    const id = uniq();
    await store.putSession(record(id), 80);
    await new Promise((r) => setTimeout(r, 160));
    expect(await store.getSession(id)).toBeUndefined();
    expect((await store.listSessions()).map((s) => s.id)).not.toContain(id);
  });

  it("hands a dead broker's ledger to one claimer, never a live broker's", async () => {
    const [dead, live, a, b, c] = [uniq(), uniq(), uniq(), uniq(), uniq()];
    for (const broker of [dead, live, a, b, c]) expect(await store.markBrokerAlive(broker, 60_000)).toBe(false);
    // A renewal finds the mark there.
    expect(await store.markBrokerAlive(live, 60_000)).toBe(true);
    await store.putLedgerEntry(dead, 's1', '{"n":1}');
    await store.putLedgerEntry(dead, 's2', '{"n":2}');
    await store.putLedgerEntry(dead, 's3', '{"n":3}');
    await store.removeLedgerEntry(dead, 's3');
    await store.putLedgerEntry(live, 's4', '{"n":4}');
    expect(await store.claimLedgers(a, 0)).toEqual([]);
    await store.markBrokerAlive(dead, 0);
    const [byA, byB] = await Promise.all([store.claimLedgers(a, 0), store.claimLedgers(b, 0)]);
    expect([...byA, ...byB].sort()).toEqual(['{"n":1}', '{"n":2}']);
    expect(await store.claimLedgers(c, 0)).toEqual([]);
    // The claimer holds them now (what it holds can be read back): when it is gone too, they pass on again.
    expect([...(await store.ledgerEntries(a)), ...(await store.ledgerEntries(b))].sort()).toEqual(['{"n":1}', '{"n":2}']);
    expect(await store.ledgerEntries(live)).toEqual(['{"n":4}']);
    await store.markBrokerAlive(byA.length > 0 ? a : b, 0);
    expect((await store.claimLedgers(c, 0)).sort()).toEqual(['{"n":1}', '{"n":2}']);
    for (const s of ['s1', 's2']) await store.removeLedgerEntry(c, s);
    await store.removeLedgerEntry(live, 's4');
    for (const broker of [live, a, b, c]) await store.markBrokerAlive(broker, 0);
  });

  it("hands a dead broker's entries only to a claimer that has their host, and what has no readable place to any", async () => {
    const [dead, onB, onA] = [uniq(), uniq(), uniq()];
    for (const broker of [onB, onA]) await store.markBrokerAlive(broker, 60_000);
    const at = (host: string, n: number) => JSON.stringify({ n, place: { backend: 'docker', host } });
    await store.putLedgerEntry(dead, 's1', at('a', 1));
    await store.putLedgerEntry(dead, 's2', at('b', 2));
    await store.putLedgerEntry(dead, 's3', '{"n":3}');
    await store.putLedgerEntry(dead, 's4', JSON.stringify({ n: 4, place: { backend: 'kubernetes', host: 'a' } }));
    expect((await store.claimLedgers(onB, 0, [placeKey('docker', 'b')])).sort()).toEqual([at('b', 2), '{"n":3}'].sort());
    // Left where it was: the broker that has the host claims it later.
    expect(await store.claimLedgers(onB, 0, [placeKey('docker', 'b')])).toEqual([]);
    expect(await store.claimLedgers(onA, 0, [placeKey('docker', 'a')])).toEqual([at('a', 1)]);
    expect((await store.ledgerEntries(dead)).sort()).toEqual([JSON.stringify({ n: 4, place: { backend: 'kubernetes', host: 'a' } })]);
    expect(await store.claimLedgers(onA, 0, [placeKey('docker', 'a'), placeKey('kubernetes', 'a')])).toHaveLength(1);
    expect(await store.ledgerEntries(dead)).toEqual([]);
    for (const s of ['s2', 's3']) await store.removeLedgerEntry(onB, s);
    for (const s of ['s1', 's4']) await store.removeLedgerEntry(onA, s);
    for (const broker of [onB, onA]) await store.markBrokerAlive(broker, 0);
  });

  it("lets a broker's alive mark lapse with its TTL", async () => {
    const [gone, claimer] = [uniq(), uniq()];
    await store.markBrokerAlive(claimer, 60_000);
    // Long enough to outlive the next two calls on a loaded machine, short enough to wait out.
    await store.markBrokerAlive(gone, 1_000);
    await store.putLedgerEntry(gone, 's1', '{"lapsed":1}');
    expect(await store.claimLedgers(claimer, 0)).not.toContain('{"lapsed":1}');
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await store.markBrokerAlive(gone, 60_000)).toBe(false);
    await store.markBrokerAlive(gone, 0);
    expect(await store.claimLedgers(claimer, 0)).toContain('{"lapsed":1}');
    await store.removeLedgerEntry(claimer, 's1');
    await store.markBrokerAlive(claimer, 0);
  });

  it('claims nothing for a broker whose own mark is not fresh: a claim that waited through a pause of the store', async () => {
    const [dead, stale] = [uniq(), uniq()];
    await store.putLedgerEntry(dead, 's1', '{"stale":1}');
    // Renewed 60 s ago, as far as the store can tell: 1 s of its 61 s left.
    await store.markBrokerAlive(stale, 1_000);
    expect(await store.claimLedgers(stale, 50_000)).toEqual([]);
    await store.markBrokerAlive(stale, 61_000);
    expect(await store.claimLedgers(stale, 50_000)).toEqual(['{"stale":1}']);
    // Without a mark at all, nothing either.
    await store.markBrokerAlive(stale, 0);
    await store.putLedgerEntry(dead, 's2', '{"stale":2}');
    expect(await store.claimLedgers(stale, 50_000)).toEqual([]);
    await store.removeLedgerEntry(stale, 's1');
    await store.removeLedgerEntry(dead, 's2');
  });

  it('refreshes many sessions and their user slots at once, putting back a slot the store lost', async () => {
    const user = `u-${uniq()}`;
    const [a, b] = [uniq(), uniq()];
    expect(await store.acquireUserSlot(user, a, 2, 80)).toBe(true);
    await store.putSession({ ...record(a), user }, 80);
    // b's slot is gone from the store (a Redis restarted) while b lives on.
    await store.putSession({ ...record(b), user }, 80);
    await store.refreshSessions([{ ...record(a), user, bytesOut: 5 }, { ...record(b), user, bytesOut: 6 }], 10_000, true);
    await new Promise((r) => setTimeout(r, 160));
    // Past the first TTL: both records live on with their new counts.
    expect((await store.getSession(a))?.bytesOut).toBe(5);
    expect((await store.getSession(b))?.bytesOut).toBe(6);
    expect((await store.listSessions()).map((s) => s.id)).toEqual(expect.arrayContaining([a, b]));
    // Both slots are held again: the user is at the cap of 2.
    expect(await store.acquireUserSlot(user, uniq(), 2, 10_000)).toBe(false);
    await store.releaseUserSlot(user, b);
    expect(await store.acquireUserSlot(user, uniq(), 2, 10_000)).toBe(true);
    await store.removeSession(a);
    await store.removeSession(b);
  });

  it('caps sessions per user, and frees slots on release and on expiry', async () => {
    const user = `u-${uniq()}`;
    expect(await store.acquireUserSlot(user, 's1', 2, 10_000)).toBe(true);
    expect(await store.acquireUserSlot(user, 's2', 2, 10_000)).toBe(true);
    expect(await store.acquireUserSlot(user, 's3', 2, 10_000)).toBe(false);
    expect(await store.acquireUserSlot(user, 's2', 2, 10_000)).toBe(true);
    await store.releaseUserSlot(user, 's1');
    expect(await store.acquireUserSlot(user, 's3', 2, 80)).toBe(true);
    await new Promise((r) => setTimeout(r, 160));
    expect(await store.acquireUserSlot(user, 's4', 2, 10_000)).toBe(true);
  });

  it('keeps a cap under a race of concurrent acquirers', async () => {
    const user = `u-${uniq()}`;
    const got = await Promise.all(Array.from({ length: 30 }, (_, i) => store.acquireUserSlot(user, `s${i}`, 5, 10_000)));
    expect(got.filter(Boolean)).toHaveLength(5);
  });

  it('rate-limits with a window and says when to retry', async () => {
    const key = `k-${uniq()}`;
    for (let i = 0; i < 3; i++) expect((await store.hit(key, 3, 500)).allowed).toBe(true);
    expect((await store.peek(key, 3)).allowed).toBe(false);
    const denied = await store.hit(key, 3, 500);
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterMs).toBeGreaterThan(0);
    expect(denied.retryAfterMs).toBeLessThanOrEqual(500);
    await new Promise((r) => setTimeout(r, 600));
    expect((await store.peek(key, 3)).allowed).toBe(true);
  });

  it("peeks a window's count without counting, and a lapsed window's as none", async () => {
    const key = `k-${uniq()}`;
    expect(await store.peek(key, 3)).toEqual({ allowed: true, retryAfterMs: 0, count: 0 });
    for (let i = 0; i < 2; i++) await store.hit(key, 3, 300);
    expect(await store.peek(key, 3)).toEqual({ allowed: true, retryAfterMs: 0, count: 2 });
    expect((await store.peek(key, 3)).count).toBe(2);
    await new Promise((r) => setTimeout(r, 400));
    expect((await store.peek(key, 3)).count).toBe(0);
  });

  it('revokes by jti, and every token of a user issued before a time', async () => {
    const jti = uniq();
    const user = `u-${uniq()}`;
    expect(await store.isRevoked(jti, user, Date.now())).toBe(false);
    await store.revokeToken(jti, Date.now() + 60_000);
    expect(await store.isRevoked(jti, user, Date.now())).toBe(true);
    const t = Date.now();
    await store.revokeUserBefore(user, t);
    await store.revokeUserBefore(user, t - 10_000); // never moves the line back
    expect(await store.isRevoked(undefined, user, t - 1)).toBe(true);
    expect(await store.isRevoked(undefined, user, t + 1)).toBe(false);
  });

  it('delivers control messages to the named broker only', async () => {
    const got: ControlMessage[] = [];
    const other: ControlMessage[] = [];
    const a = `a-${uniq()}`;
    await store.subscribe(a, (m) => got.push(m));
    await store.subscribe(`b-${uniq()}`, (m) => other.push(m));
    expect(await store.publish(a, { type: 'kill', sessionId: 's', by: 'admin' })).toBe(1);
    await until(() => got.length === 1, 'the message');
    expect(got[0]).toEqual({ type: 'kill', sessionId: 's', by: 'admin' });
    expect(other).toHaveLength(0);
    // Nobody listens for this one: the sender is told it went nowhere.
    expect(await store.publish(`c-${uniq()}`, { type: 'kill', sessionId: 's', by: 'admin' })).toBe(0);
  });

  const auditEvent = (n: number): AuditEvent => ({ type: 'exec', time: new Date().toISOString(), broker: 'b1', user: `pager-${n}` });
  /** A cursor of this store's own form, far past any event it holds. */
  const farFuture = { MemoryStore: String(Number.MAX_SAFE_INTEGER), RedisStore: '18446744073709551615-18446744073709551615' }[_name]!;

  it('pages the audit trail newest first with the cursors it hands out', async () => {
    for (let n = 0; n < 5; n++) await store.appendAudit(auditEvent(n), 1000);
    const first = await store.queryAudit({ limit: 2 });
    expect(first.events.map((e) => e.user)).toEqual(['pager-4', 'pager-3']);
    const second = await store.queryAudit({ limit: 2, cursor: first.next! });
    expect(second.events.map((e) => e.user)).toEqual(['pager-2', 'pager-1']);
  });

  it('reads from the newest event at once when the cursor lies far past it', async () => {
    await store.appendAudit(auditEvent(99), 1000);
    const started = Date.now();
    const page = await store.queryAudit({ limit: 1, cursor: farFuture });
    expect(page.events.map((e) => e.user)).toEqual(['pager-99']);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('ends the walk at since and starts it at until, past more events than one query reads', async () => {
    // The memory store keeps events in the order they were written, each with its writer's time:
    // an event of ten minutes ago comes first in a store of its own.
    const s = _name === 'MemoryStore' ? new MemoryStore() : store;
    await s.appendAudit({ ...auditEvent(0), user: 'early-bird', time: new Date(Date.now() - 10 * 60_000).toISOString() }, 100_000);
    // More than the 20,000 events one query reads, all written now.
    await Promise.all(Array.from({ length: 20_050 }, (_, n) => s.appendAudit(auditEvent(n), 100_000)));
    const now = Date.now();
    const late = await s.queryAudit({ limit: 10, since: now + 5 * 60_000 });
    expect(late).toEqual({ events: [], next: undefined });
    const early = await s.queryAudit({ limit: 10, until: now - 5 * 60_000 });
    expect(early.next).toBeUndefined();
    // Redis places an event in its stream when it is added (now), whatever its time says.
    if (_name === 'MemoryStore') expect(early.events.map((e) => e.user)).toEqual(['early-bird']);
    else expect(early.events).toEqual([]);
  });

  it('refuses an audit cursor it never issued as a bad request, not as a store failure', async () => {
    for (const cursor of ['garbage', '-1', '1.5', '1e3', '99999999999999999999999', '1-2-3', '18446744073709551616-0', '9007199254740992']) {
      await expect(store.queryAudit({ limit: 10, cursor }), cursor).rejects.toMatchObject({ code: 'ENTRY_BAD_REQUEST', status: 400 });
    }
  });

  it('reports healthy', async () => {
    expect(await store.healthy()).toBe(true);
  });
});

describe('the Redis store when Redis stops answering and keeps its connections', () => {
  it('fails calls within the command timeout, reports unhealthy, and answers again once Redis does', async () => {
    const paused = new TestRedis();
    await paused.start();
    const store = new RedisStore(createRedisClient({ url: paused.url, sentinels: [], sentinelName: undefined, cluster: false }));
    await store.connect();
    try {
      await store.putSession(record('p1'), 60_000);
      paused.pause();
      const started = Date.now();
      await expect(store.listSessions()).rejects.toThrow(/timed out/i);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(await store.healthy()).toBe(false);
      paused.unpause();
      expect((await store.listSessions()).map((s) => s.id)).toEqual(['p1']);
      expect(await store.healthy()).toBe(true);
    } finally {
      paused.unpause();
      await store.close();
      await paused.stop();
    }
  }, 30_000);
});

describe('the Redis store’s rate-limit keys', () => {
  it('expire with their window, so the keys of addresses that stop failing leave Redis', async () => {
    const store = new RedisStore(createRedisClient({ url: redis.url, sentinels: [], sentinelName: undefined, cluster: false }));
    await store.connect();
    const raw = redis.client();
    try {
      await store.hit('ttl-check', 3, 5_000);
      await store.hit('ttl-check', 3, 5_000);
      const ttl = await raw.pttl('{entry}:rate:ttl-check');
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(5_000);
    } finally {
      raw.disconnect();
      await store.close();
    }
  });

  it('count with commands Redis 6 has too (no PEXPIRE NX, which is Redis 7 and aborts the MULTI before it)', async () => {
    const store = new RedisStore(createRedisClient({ url: redis.url, sentinels: [], sentinelName: undefined, cluster: false }));
    await store.connect();
    const raw = redis.client();
    const monitor = await redis.client().monitor();
    const sent: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => sent.push(args));
    try {
      const key = `v6-${Math.random().toString(36).slice(2)}`;
      const decisions = [];
      for (let i = 0; i < 4; i++) decisions.push(await store.hit(key, 3, 5_000));
      expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false]);
      expect(decisions[3]!.retryAfterMs).toBeGreaterThan(0);
      expect(decisions[3]!.retryAfterMs).toBeLessThanOrEqual(5_000);
      expect(await raw.get(`{entry}:rate:${key}`)).toBe('4');
      const ttl = await raw.pttl(`{entry}:rate:${key}`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(5_000);
      // MONITOR shows what a script runs too: no expire command carries a Redis 7 option.
      const expires = sent.filter((a) => /^p?expire$/i.test(a[0] ?? ''));
      expect(expires.length).toBeGreaterThan(0);
      for (const a of expires) expect(a.slice(3).map((x) => x.toUpperCase()), a.join(' ')).not.toEqual(expect.arrayContaining([expect.stringMatching(/^(NX|XX|GT|LT)$/)]));
    } finally {
      monitor.disconnect();
      raw.disconnect();
      await store.close();
    }
  });
});

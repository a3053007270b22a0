import type { Cluster, Redis } from 'ioredis';
import { AUDIT_CLOCK_SLACK_MS, type AuditEvent, type AuditPage, type AuditQuery, matches } from '../audit/events.js';
import { EntryError, ignoreError } from '../errors.js';
import type { ControlMessage, RateDecision, SessionRecord, Store } from './store.js';

/** Most stream entries one audit query reads, so a narrow filter cannot scan forever. */
const AUDIT_SCAN_LIMIT = 20_000;

const U64_MAX = 2n ** 64n - 1n;

/**
 * Whether a cursor is a stream entry ID (`ms-seq`, each part a 64-bit unsigned integer), so that
 * a made-up one is the caller's 400, not a Redis error reported as the store being unavailable.
 */
function isStreamId(cursor: string): boolean {
  const m = /^(\d{1,20})-(\d{1,20})$/.exec(cursor);
  return m !== null && BigInt(m[1]!) <= U64_MAX && BigInt(m[2]!) <= U64_MAX;
}

/** One hash tag for every key: all on one cluster slot, so scripts may touch several. */
const P = '{entry}:';

const ACQUIRE_SLOT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2])
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`;

const RAISE_TO = `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
return 1`;

/**
 * One rate-limit hit: count it, start the window on the first hit (or on a key that somehow has
 * no TTL, so no key outlives its window), and answer the count and the time left. A script
 * rather than `PEXPIRE … NX`, which needs Redis 7 and aborts a MULTI on older servers.
 */
const HIT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`;

/**
 * Moves the entries of every broker no longer marked alive into the claimer's own (ARGV[1]),
 * and answers the entries moved; nothing while the claimer's own mark has less than ARGV[2] ms
 * to live (see Store.claimLedgers). With places (ARGV[3] 'only', then a place key each, see
 * placeKey), only entries of those places are moved, and ones without a readable place (for
 * the claimer to drop): the rest stay in the dead broker's ledger for a broker that has their
 * host. One script: of two brokers claiming at once, one gets each. Its keys are derived from
 * the set of ledgers, all under the one hash tag (one cluster slot).
 */
const CLAIM_LEDGERS = `
local out = {}
if redis.call('PTTL', '${P}alive:' .. ARGV[1]) < tonumber(ARGV[2]) then return out end
local has
if ARGV[3] == 'only' then
  has = {}
  for i = 4, #ARGV do has[ARGV[i]] = true end
end
local mine = '${P}ledger:' .. ARGV[1]
for _, b in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if b ~= ARGV[1] and redis.call('EXISTS', '${P}alive:' .. b) == 0 then
    local theirs = '${P}ledger:' .. b
    local kv = redis.call('HGETALL', theirs)
    local left = 0
    for i = 1, #kv, 2 do
      local take = true
      if has then
        local ok, e = pcall(cjson.decode, kv[i + 1])
        local p = ok and type(e) == 'table' and e.place
        if type(p) == 'table' and type(p.backend) == 'string' and type(p.host) == 'string' then
          take = has[p.backend .. '\\n' .. p.host] == true
        end
      end
      if take then
        redis.call('HSET', mine, kv[i], kv[i + 1])
        redis.call('HDEL', theirs, kv[i])
        out[#out + 1] = kv[i + 1]
      else
        left = left + 1
      end
    end
    if left == 0 then
      redis.call('DEL', theirs)
      redis.call('SREM', KEYS[1], b)
    end
  end
end
if #out > 0 then redis.call('SADD', KEYS[1], ARGV[1]) end
return out`;

/** How long /readyz waits for Redis to answer a PING before calling it unreachable. */
const HEALTH_PING_MS = 1_000;

/** Shared state in Redis, for many brokers behind one address. */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private subscriber: Redis | Cluster | undefined;
  private readonly handlers = new Map<string, Array<(message: ControlMessage) => void>>();
  /** Control channels whose SUBSCRIBE has not succeeded yet. */
  private readonly unconfirmed = new Set<string>();
  /** Told when the subscriber connection is ready again after a break (see onControlResumed). */
  private readonly resumed: Array<() => void> = [];

  constructor(private readonly redis: Redis | Cluster) {}

  async connect(): Promise<void> {
    await this.redis.connect();
  }

  async healthy(): Promise<boolean> {
    if (this.redis.status !== 'ready') return false;
    // Connected is not answering: a paused Redis keeps its connections open.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), HEALTH_PING_MS)));
    try {
      return await Promise.race([this.redis.ping().then(() => true, () => false), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async putTicket(key: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(`${P}ticket:${key}`, value, 'PX', ttlMs);
  }

  async takeTicket(key: string): Promise<string | undefined> {
    // GETDEL: one round trip, atomic; two brokers racing cannot both get the value.
    return (await this.redis.getdel(`${P}ticket:${key}`)) ?? undefined;
  }

  async putSession(record: SessionRecord, ttlMs: number): Promise<void> {
    await this.writeSessions([record], ttlMs, false);
  }

  async refreshSessions(records: readonly SessionRecord[], ttlMs: number, userSlots: boolean): Promise<void> {
    await this.writeSessions(records, ttlMs, userSlots);
  }

  /** The records with a fresh TTL, and their users' slots with `userSlots`: one transaction. */
  private async writeSessions(records: readonly SessionRecord[], ttlMs: number, userSlots: boolean): Promise<void> {
    if (records.length === 0) return;
    const expires = Date.now() + ttlMs;
    const tx = this.redis.multi();
    for (const record of records) tx.set(`${P}session:${record.id}`, JSON.stringify(record), 'PX', ttlMs);
    tx.zadd(`${P}sessions`, ...records.flatMap((r) => [expires, r.id]));
    if (userSlots) {
      const byUser = new Map<string, Array<number | string>>();
      for (const r of records) {
        const pairs = byUser.get(r.user);
        if (pairs) pairs.push(expires, r.id);
        else byUser.set(r.user, [expires, r.id]);
      }
      // Put back if lost (a Redis restarted): a live session holds its slot. A session that
      // ended while this was on its way has its slot released again by the registry.
      for (const [user, pairs] of byUser) tx.zadd(`${P}slots:${user}`, ...pairs).pexpire(`${P}slots:${user}`, ttlMs);
    }
    await tx.exec();
  }

  async putLedgerEntry(broker: string, session: string, entry: string): Promise<void> {
    await this.redis.multi().hset(`${P}ledger:${broker}`, session, entry).sadd(`${P}ledgers`, broker).exec();
  }

  async removeLedgerEntry(broker: string, session: string): Promise<void> {
    await this.redis.hdel(`${P}ledger:${broker}`, session);
  }

  async ledgerEntries(broker: string): Promise<string[]> {
    return this.redis.hvals(`${P}ledger:${broker}`);
  }

  async markBrokerAlive(broker: string, ttlMs: number): Promise<boolean> {
    if (ttlMs <= 0) return (await this.redis.del(`${P}alive:${broker}`)) > 0;
    // SET … GET (Redis 6.2): the old value says whether the mark was still there.
    return (await this.redis.set(`${P}alive:${broker}`, '1', 'PX', ttlMs, 'GET')) !== null;
  }

  async claimLedgers(broker: string, minOwnMarkMs: number, places?: readonly string[]): Promise<string[]> {
    const only = places ? ['only', ...places] : [];
    return (await this.redis.eval(CLAIM_LEDGERS, 1, `${P}ledgers`, broker, minOwnMarkMs, ...only)) as string[];
  }

  async removeSession(id: string): Promise<void> {
    await this.redis.multi().del(`${P}session:${id}`).zrem(`${P}sessions`, id).exec();
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const raw = await this.redis.get(`${P}session:${id}`);
    return raw ? (JSON.parse(raw) as SessionRecord) : undefined;
  }

  async listSessions(): Promise<SessionRecord[]> {
    await this.redis.zremrangebyscore(`${P}sessions`, '-inf', Date.now());
    const ids = await this.redis.zrange(`${P}sessions`, 0, -1);
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => `${P}session:${id}`));
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as SessionRecord);
  }

  async acquireUserSlot(user: string, sessionId: string, limit: number, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const ok = await this.redis.eval(ACQUIRE_SLOT, 1, `${P}slots:${user}`, now, sessionId, limit, now + ttlMs, ttlMs);
    return ok === 1;
  }

  async releaseUserSlot(user: string, sessionId: string): Promise<void> {
    await this.redis.zrem(`${P}slots:${user}`, sessionId);
  }

  async hit(key: string, limit: number, windowMs: number): Promise<RateDecision> {
    const k = `${P}rate:${key}`;
    const [count, ttl] = (await this.redis.eval(HIT, 1, k, windowMs)) as [number, number];
    return count > limit ? { allowed: false, retryAfterMs: Math.max(ttl, 0) } : { allowed: true, retryAfterMs: 0 };
  }

  async peek(key: string, limit: number): Promise<RateDecision & { count: number }> {
    const k = `${P}rate:${key}`;
    const res = await this.redis.multi().get(k).pttl(k).exec();
    const count = Number(res?.[0]?.[1] ?? 0);
    const ttl = Number(res?.[1]?.[1] ?? 0);
    return count >= limit && ttl > 0 ? { allowed: false, retryAfterMs: ttl, count } : { allowed: true, retryAfterMs: 0, count };
  }

  async revokeToken(jti: string, untilMs: number): Promise<void> {
    await this.redis.set(`${P}revoked:jti:${jti}`, '1', 'PXAT', Math.max(untilMs, Date.now() + 1000));
  }

  async revokeUserBefore(user: string, beforeMs: number): Promise<void> {
    await this.redis.eval(RAISE_TO, 1, `${P}revoked:user:${user}`, beforeMs);
  }

  async isRevoked(jti: string | undefined, user: string, issuedAtMs: number): Promise<boolean> {
    const [byJti, before] = await this.redis.mget(jti ? `${P}revoked:jti:${jti}` : `${P}revoked:jti:`, `${P}revoked:user:${user}`);
    if (jti && byJti) return true;
    return before !== null && issuedAtMs < Number(before);
  }

  async publish(broker: string, message: ControlMessage): Promise<number | undefined> {
    const heard = await this.redis.publish(`${P}control:${broker}`, JSON.stringify(message));
    return this.redis.isCluster ? undefined : heard;
  }

  async subscribe(broker: string, handler: (message: ControlMessage) => void): Promise<void> {
    // A connection in subscriber mode can do nothing else: it gets its own.
    if (!this.subscriber) {
      // Subscriptions may wait for Redis (it may be down at start). ioredis re-subscribes after
      // a reconnect only to channels whose SUBSCRIBE once succeeded, and a SUBSCRIBE queued
      // while Redis is down is rejected after the client's retries: so every channel not yet
      // confirmed is asked for again each time the connection is ready, until it is.
      const sub = (this.redis as Redis).duplicate({ enableOfflineQueue: true, lazyConnect: false });
      // Connection errors are the main client's to report (and /readyz's): not unhandled here.
      sub.on('error', ignoreError);
      let readyBefore = false;
      sub.on('ready', () => {
        // A refusal is asked again at the next 'ready'; meanwhile the brokers' periodic look at
        // the stored revocations covers what the channel would have carried.
        for (const channel of this.unconfirmed) void this.subscribeChannel(sub, channel).catch(() => undefined);
        // A reconnect: whatever was published while the link was down never arrives.
        if (readyBefore) for (const told of this.resumed) told();
        readyBefore = true;
      });
      this.subscriber = sub;
      sub.on('message', (channel: string, text: string) => {
        let message: ControlMessage;
        try {
          message = JSON.parse(text) as ControlMessage;
        } catch {
          // Not a broker's (every broker publishes JSON): nothing here to act on.
          return;
        }
        for (const h of this.handlers.get(channel) ?? []) h(message);
      });
    }
    const channel = `${P}control:${broker}`;
    this.handlers.set(channel, [...(this.handlers.get(channel) ?? []), handler]);
    this.unconfirmed.add(channel);
    // The first attempt's failure is the caller's to report; the retries on 'ready' go on.
    await this.subscribeChannel(this.subscriber, channel);
  }

  onControlResumed(handler: () => void): void {
    this.resumed.push(handler);
  }

  private async subscribeChannel(sub: Redis | Cluster, channel: string): Promise<void> {
    await sub.subscribe(channel);
    this.unconfirmed.delete(channel);
  }

  async appendAudit(event: AuditEvent, maxLength: number): Promise<void> {
    // Approximate trimming (~) keeps XADD O(1); the cap holds within one radix-tree node.
    await this.redis.xadd(`${P}audit`, 'MAXLEN', '~', maxLength, '*', 'e', JSON.stringify(event));
  }

  async queryAudit(query: AuditQuery): Promise<AuditPage> {
    const events: AuditEvent[] = [];
    if (query.cursor !== undefined && !isStreamId(query.cursor)) throw new EntryError('ENTRY_BAD_REQUEST', 'cursor must be a `next` from an earlier page');
    // Nothing is older than 0-0 (and Redis refuses it as an exclusive end).
    if (query.cursor === '0-0') return { events, next: undefined };
    let end = query.cursor ? `(${query.cursor}` : '+';
    // A stream id starts with the time it was added: `until` and `since` bound the walk itself.
    if (query.until !== undefined) {
      const last = query.until + AUDIT_CLOCK_SLACK_MS;
      if (!query.cursor || Number(query.cursor.split('-')[0]) > last) end = String(last);
    }
    const oldest = query.since !== undefined ? query.since - AUDIT_CLOCK_SLACK_MS : -Infinity;
    let scanned = 0;
    const seen = new Set<string>();
    while (events.length < query.limit && scanned < AUDIT_SCAN_LIMIT) {
      const batch = (await this.redis.xrevrange(`${P}audit`, end, '-', 'COUNT', 500)) as Array<[string, string[]]>;
      if (batch.length === 0) return { events, next: undefined };
      for (const [id, fields] of batch) {
        scanned++;
        if (Number(id.split('-')[0]) < oldest) return { events, next: undefined };
        end = `(${id}`;
        const e = JSON.parse(fields[1] ?? '{}') as AuditEvent;
        // Written twice (a write that timed out, then tried again): read once.
        if (e.id !== undefined) {
          if (seen.has(e.id)) continue;
          seen.add(e.id);
        }
        if (matches(e, query)) {
          events.push(e);
          if (events.length === query.limit) return { events, next: id };
        }
      }
    }
    return { events, next: end.slice(1) };
  }

  async publishOutput(sessionId: string, data: Uint8Array): Promise<void> {
    await this.redis.publish(`${P}output:${sessionId}`, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  async subscribeOutput(sessionId: string, handler: (data: Buffer) => void): Promise<() => Promise<void>> {
    const sub = (this.redis as Redis).duplicate({ enableOfflineQueue: true, lazyConnect: false });
    sub.on('error', ignoreError);
    const channel = `${P}output:${sessionId}`;
    sub.on('messageBuffer', (ch: Buffer, data: Buffer) => {
      if (ch.toString() === channel) handler(data);
    });
    try {
      await sub.subscribe(channel);
    } catch (err) {
      // Otherwise the client would go on reconnecting for a watch that never started.
      sub.disconnect();
      throw err;
    }
    return async () => {
      sub.disconnect();
    };
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
    this.redis.disconnect();
  }
}

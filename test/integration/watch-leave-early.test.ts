import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuditTrail } from '../../broker/audit/audit-trail.js';
import type { Identity } from '../../broker/auth/identity.js';
import { createLogger } from '../../broker/log.js';
import type { ClientTerminal, TerminalEvents } from '../../broker/session/types.js';
import { runWatchSession } from '../../broker/session/watch-session.js';
import { createRedisClient } from '../../broker/store/redis-connection.js';
import { RedisStore } from '../../broker/store/redis-store.js';
import type { ControlMessage, SessionRecord } from '../../broker/store/store.js';
import { TestRedis } from '../helpers/redis.js';

const redis = new TestRedis();
beforeAll(() => redis.start());
afterAll(() => redis.stop());

/** A Redis store whose control messages and output subscriptions wait until the test lets them through. */
class GatedStore extends RedisStore {
  published: ControlMessage[] = [];
  subscriptions = 0;
  unsubscribed = 0;
  holdPublish: Promise<void> | undefined;
  holdSubscribe: Promise<void> | undefined;

  override async publish(broker: string, message: ControlMessage): Promise<number | undefined> {
    this.published.push(message);
    await this.holdPublish;
    return super.publish(broker, message);
  }

  override async subscribeOutput(sessionId: string, handler: (data: Buffer) => void): Promise<() => Promise<void>> {
    this.subscriptions++;
    await this.holdSubscribe;
    const unsubscribe = await super.subscribeOutput(sessionId, handler);
    return async () => {
      this.unsubscribed++;
      await unsubscribe();
    };
  }
}

/** A watcher's terminal that can leave on cue. */
class WatcherTerminal {
  events: TerminalEvents | undefined;
  finished = false;
  start(events: TerminalEvents): void {
    this.events = events;
  }
  send(): boolean {
    return true;
  }
  async finish(): Promise<void> {
    this.finished = true;
  }
  leave(): void {
    this.events!.gone();
  }
}

const gate = () => {
  let open!: () => void;
  const held = new Promise<void>((r) => (open = r));
  return { held, open };
};

const until = async (check: () => boolean, what: string) => {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

const overseer: Identity = { user: 'overseer', apps: [], roles: ['entry-admin'], admin: true, tokenId: undefined, issuedAt: 0, expiresAt: 0 };

describe('a watcher who leaves before its watch has started', () => {
  let store: GatedStore;
  let n = 0;

  beforeEach(async () => {
    // Only the watch's own intervals are faked: Redis's timeouts stay real.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    store = new GatedStore(createRedisClient({ url: redis.url, sentinels: [], sentinelName: undefined, cluster: false }));
    await store.connect();
  });
  afterEach(async () => {
    vi.useRealTimers();
    await store.close();
  });

  const watch = async () => {
    const sessionId = `watched-${n++}`;
    const record: SessionRecord = { id: sessionId, user: 'watched', source: '127.0.0.1', app: 'shop', proc: 'web', instance: '1', container: 'c0ffee', dockerHost: 'local', broker: 'holder', startedAt: new Date().toISOString(), bytesIn: 0, bytesOut: 0, command: null, tty: true };
    await store.putSession(record, 60_000);
    const log = createLogger('error', () => undefined);
    const terminal = new WatcherTerminal();
    const deps = { store, log, audit: new AuditTrail(store, log, { brokerId: 'b1', maxEvents: 100, alertRules: [] }), sessionTtlMs: 15_000 };
    const run = runWatchSession({ terminal: terminal as unknown as ClientTerminal, identity: overseer, sessionId, remoteAddress: '127.0.0.1' }, deps);
    return { terminal, run };
  };

  it('keeps the lease and the liveness check running while the watcher stays, and stops both when it leaves', async () => {
    const { terminal, run } = await watch();
    await run;
    expect(vi.getTimerCount()).toBe(2);
    terminal.leave();
    expect(vi.getTimerCount()).toBe(0);
    expect(store.unsubscribed).toBe(1);
  });

  it('starts no timer when the watcher left while the first lease was on its way', async () => {
    const publish = gate();
    store.holdPublish = publish.held;
    const { terminal, run } = await watch();
    await until(() => store.published.length === 1, 'the first lease');
    terminal.leave();
    publish.open();
    await run;
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(120_000);
    expect(store.published).toHaveLength(1);
    expect(store.unsubscribed).toBe(1);
  });

  it('drops the output subscription, and asks for no lease, when the watcher left while it was being made', async () => {
    const subscribe = gate();
    store.holdSubscribe = subscribe.held;
    const { terminal, run } = await watch();
    await until(() => store.subscriptions === 1, 'the subscription');
    terminal.leave();
    subscribe.open();
    await run;
    expect(store.unsubscribed).toBe(1);
    expect(store.published).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});

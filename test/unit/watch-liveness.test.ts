import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuditTrail } from '../../broker/audit/audit-trail.js';
import type { Identity } from '../../broker/auth/identity.js';
import { createLogger } from '../../broker/log.js';
import type { ClientTerminal, TerminalEvents } from '../../broker/session/types.js';
import { runWatchSession } from '../../broker/session/watch-session.js';
import { MemoryStore } from '../../broker/store/memory-store.js';
import type { SessionRecord } from '../../broker/store/store.js';

class WatcherTerminal {
  events: TerminalEvents | undefined;
  ended: string | undefined;
  start(events: TerminalEvents): void {
    this.events = events;
  }
  send(): boolean {
    return true;
  }
  async finish(_reason: unknown, line?: string): Promise<void> {
    this.ended = line ?? 'ended';
  }
}

const overseer: Identity = { user: 'overseer', apps: [], roles: ['entry-admin'], admin: true, tokenId: undefined, issuedAt: 0, expiresAt: 0 };
const record: SessionRecord = { id: 'watched', user: 'u', source: '127.0.0.1', app: 'shop', proc: 'web', instance: '1', container: 'c0ffee', dockerHost: 'local', broker: 'holder', startedAt: new Date().toISOString(), bytesIn: 0, bytesOut: 0, command: null, tty: true };
const TTL_MS = 15_000;

describe("a watch while the watched session's record is missing", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('goes on through a gap shorter than the session TTL (a Redis restart), and ends once the record stays away that long', async () => {
    const store = new MemoryStore();
    await store.putSession(record, 600_000);
    const log = createLogger('error', () => undefined);
    const terminal = new WatcherTerminal();
    await runWatchSession({ terminal: terminal as unknown as ClientTerminal, identity: overseer, sessionId: record.id, remoteAddress: '127.0.0.1' }, { store, log, audit: new AuditTrail(store, log, { brokerId: 'b1', maxEvents: 100, alertRules: [] }), sessionTtlMs: TTL_MS });
    // The record is lost, and its broker's heartbeat brings it back 5 s later.
    await store.removeSession(record.id);
    await vi.advanceTimersByTimeAsync(5_000);
    await store.putSession(record, 600_000);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(terminal.ended).toBeUndefined();
    // Gone for good: the watch ends within a TTL and a check.
    await store.removeSession(record.id);
    await vi.advanceTimersByTimeAsync(TTL_MS - 2_000);
    expect(terminal.ended).toBeUndefined();
    await vi.advanceTimersByTimeAsync(4_000);
    expect(terminal.ended).toMatch(/no longer listed/);
    terminal.events?.gone();
  });
});

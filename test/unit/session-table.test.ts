import { describe, expect, it } from 'vitest';
import { EntryError } from '../../broker/errors.js';
import { createLogger } from '../../broker/log.js';
import type { LiveSession } from '../../broker/session/live-session.js';
import { SessionTable } from '../../broker/session/session-table.js';
import { AuditTrail } from '../../broker/audit/audit-trail.js';
import { MemoryStore } from '../../broker/store/memory-store.js';
import { EVERY_BROKER } from '../../broker/store/store.js';

/**
 * A session whose stop is honoured later (an exec still opening): `stop` resolves, and the
 * session leaves the table, only when `end` is called.
 */
function slowSession(table: SessionTable, id: string, who: { user: string; issuedAt: number; tokenId?: string } = { user: 'alice', issuedAt: 0 }) {
  const stops: EntryError[] = [];
  let end!: () => void;
  const ended = new Promise<undefined>((resolve) => (end = () => resolve(undefined)));
  let untrack = () => undefined as void;
  const session: LiveSession = {
    id,
    user: who.user,
    app: 'a',
    proc: 'web',
    instance: '1',
    credential: { issuedAt: who.issuedAt, tokenId: who.tokenId },
    stop: (error) => {
      stops.push(error);
      return ended;
    },
    announce: async () => undefined,
    watch: () => undefined,
  };
  untrack = table.track(session);
  return {
    stops,
    end: () => {
      untrack();
      end();
    },
  };
}

const settledWithin = async (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe('SessionTable drain', () => {
  const log = createLogger('error', () => undefined);

  it('waits for a session whose stop is honoured only once it has started', async () => {
    const table = new SessionTable(10, log);
    const s = slowSession(table, 's1');
    const drained = table.drain();
    expect(s.stops.map((e) => e.code)).toEqual(['ENTRY_DRAINING']);
    expect(await settledWithin(drained, 50)).toBe(false);
    s.end();
    expect(await settledWithin(drained, 1000)).toBe(true);
    expect(table.size).toBe(0);
  });

  it('stops a session admitted before the drain but tracked after it began, and waits for it', async () => {
    const table = new SessionTable(10, log);
    const first = slowSession(table, 's1');
    const drained = table.drain();
    const late = slowSession(table, 's2');
    expect(late.stops.map((e) => e.code)).toEqual(['ENTRY_DRAINING']);
    first.end();
    expect(await settledWithin(drained, 50)).toBe(false);
    late.end();
    expect(await settledWithin(drained, 1000)).toBe(true);
  });

  it('resolves at once with no sessions, and refuses new ones from then on', async () => {
    const table = new SessionTable(10, log);
    expect(await settledWithin(table.drain(), 1000)).toBe(true);
    expect(() => table.admissible()).toThrow(/shutting down/);
  });
});

describe('SessionTable revocations', () => {
  const log = createLogger('error', () => undefined);

  it('ends the sessions admitted with a token a revocation covers, and only those', async () => {
    const store = new MemoryStore();
    const table = new SessionTable(10, log);
    table.listen(store, 'b1', new AuditTrail(store, log, { brokerId: 'b1', maxEvents: 100, alertRules: [] }));
    const old = slowSession(table, 's1', { user: 'alice', issuedAt: 1_000, tokenId: 'j1' });
    const fresh = slowSession(table, 's2', { user: 'alice', issuedAt: 5_000, tokenId: 'j2' });
    const other = slowSession(table, 's3', { user: 'bob', issuedAt: 1_000, tokenId: 'j3' });
    await store.publish(EVERY_BROKER, { type: 'revoke', by: 'boss', revocation: { user: 'alice', before: 3_000 } });
    await new Promise((r) => setImmediate(r));
    expect(old.stops.map((e) => [e.code, e.message])).toEqual([['ENTRY_TOKEN_REVOKED', 'access token revoked: by boss']]);
    expect(fresh.stops).toEqual([]);
    expect(other.stops).toEqual([]);
    await store.publish(EVERY_BROKER, { type: 'revoke', by: 'boss', revocation: { jti: 'j3' } });
    await new Promise((r) => setImmediate(r));
    expect(other.stops.map((e) => e.code)).toEqual(['ENTRY_TOKEN_REVOKED']);
    expect(fresh.stops).toEqual([]);
    const kills = (await store.queryAudit({ limit: 10, type: 'session.kill' })).events.map((e) => e.sessionId).sort();
    expect(kills).toEqual(['s1', 's3']);
    for (const s of [old, fresh, other]) s.end();
  });

  it('tries a check the store failed again soon, without waiting for the next one due', async () => {
    let failures = 1;
    const store = new (class extends MemoryStore {
      override async isRevoked(...args: Parameters<MemoryStore['isRevoked']>): ReturnType<MemoryStore['isRevoked']> {
        if (failures-- > 0) throw new Error('connection is closed');
        return super.isRevoked(...args);
      }
    })();
    const audit = new AuditTrail(store, log, { brokerId: 'b1', maxEvents: 100, alertRules: [] });
    const table = new SessionTable(10, log);
    const s = slowSession(table, 's1', { user: 'hal', issuedAt: 1_000, tokenId: 'j7' });
    await store.revokeUserBefore('hal', 3_000);
    // The check the control link's return asks for meets a store still reconnecting.
    await table.recheckRevocations(store, audit);
    expect(s.stops).toEqual([]);
    await expect.poll(() => s.stops.map((e) => e.code), { timeout: 3_000 }).toEqual(['ENTRY_TOKEN_REVOKED']);
    s.end();
    await table.drain();
  });

  it('runs a check asked for while one is on its way once that one is done (the link back may know more)', async () => {
    let hold: (() => void) | undefined;
    const store = new (class extends MemoryStore {
      override async isRevoked(...args: Parameters<MemoryStore['isRevoked']>): ReturnType<MemoryStore['isRevoked']> {
        // The answer as the store had it when asked; the first asker's is slow to come back.
        const answer = await super.isRevoked(...args);
        if (hold === undefined) await new Promise<void>((r) => (hold = r));
        return answer;
      }
    })();
    const audit = new AuditTrail(store, log, { brokerId: 'b1', maxEvents: 100, alertRules: [] });
    const table = new SessionTable(10, log);
    const s = slowSession(table, 's1', { user: 'gail', issuedAt: 1_000, tokenId: 'j9' });
    // A check that asks the store before the revocation is stored, and hangs there.
    const first = table.recheckRevocations(store, audit);
    await expect.poll(() => hold !== undefined).toBe(true);
    await store.revokeUserBefore('gail', 3_000);
    // Asked for meanwhile: not dropped, run once the first is done.
    const second = table.recheckRevocations(store, audit);
    hold!();
    await Promise.all([first, second]);
    expect(s.stops.map((e) => e.code)).toEqual(['ENTRY_TOKEN_REVOKED']);
    s.end();
    await table.drain();
  });

  it('ends a session whose token a stored revocation covers at the next check, though no message told of it', async () => {
    const store = new MemoryStore();
    const table = new SessionTable(10, log);
    table.listen(store, 'b1', new AuditTrail(store, log, { brokerId: 'b1', maxEvents: 100, alertRules: [] }), 50);
    const old = slowSession(table, 's1', { user: 'frank', issuedAt: 1_000, tokenId: 'j1' });
    const fresh = slowSession(table, 's2', { user: 'frank', issuedAt: 5_000, tokenId: 'j2' });
    // Stored, as the admin API does, and its message lost.
    await store.revokeUserBefore('frank', 3_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(old.stops.map((e) => [e.code, e.message])).toEqual([['ENTRY_TOKEN_REVOKED', 'access token revoked: by stored revocation']]);
    expect(fresh.stops).toEqual([]);
    // The message arriving late changes nothing: the session was ended once.
    await store.publish(EVERY_BROKER, { type: 'revoke', by: 'boss', revocation: { user: 'frank', before: 3_000 } });
    await new Promise((r) => setTimeout(r, 100));
    expect(old.stops).toHaveLength(1);
    const kills = (await store.queryAudit({ limit: 10, type: 'session.kill' })).events.map((e) => [e.sessionId, e.by]);
    expect(kills).toEqual([['s1', 'stored revocation']]);
    for (const s of [old, fresh]) s.end();
    await table.drain();
  });
});

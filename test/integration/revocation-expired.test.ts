import { SignJWT } from 'jose';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestRedis } from '../helpers/redis.js';

/** --clock-tolerance of these brokers: a token is taken this long past its `exp`. */
const TOLERANCE_SEC = 30;

describe('a revocation of a token at or past its expiry', () => {
  const redis = new TestRedis();
  let memory: TestBroker;
  let shared: TestBroker;
  let client: Redis;

  beforeAll(async () => {
    await redis.start();
    client = redis.client();
    [memory, shared] = await Promise.all([startTestBroker({ 'clock-tolerance': String(TOLERANCE_SEC) }), startTestBroker({ 'clock-tolerance': String(TOLERANCE_SEC), 'redis-url': redis.url })]);
  });
  afterAll(async () => {
    await Promise.all([memory?.stop(), shared?.stop()]);
    client?.disconnect();
    await redis.stop();
  });

  const tokenOf = (b: TestBroker, jti: string, expSec: number) => new SignJWT({ apps: ['*'] }).setProtectedHeader({ alg: 'EdDSA' }).setSubject('jo').setJti(jti).setIssuedAt(expSec - 3600).setExpirationTime(expSec).sign(b.privateKey);
  const revoke = async (b: TestBroker, body: object) => {
    const admin = await b.mint({ roles: ['entry-admin'] }, { user: 'boss' });
    return fetch(`${b.url}/api/revocations`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  };
  const whoami = async (b: TestBroker, token: string) => {
    const res = await fetch(`${b.url}/api/whoami`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, error: ((await res.json()) as { error?: string }).error };
  };

  it('refuses a token past its exp but inside the clock tolerance once it is revoked, on either store', async () => {
    for (const b of [memory, shared]) {
      const exp = Math.floor(Date.now() / 1000) - 10;
      const jti = `late-${b === memory ? 'memory' : 'redis'}`;
      const token = await tokenOf(b, jti, exp);
      // Still taken: 10 s past exp, inside the 30 s tolerance.
      expect((await whoami(b, token)).status).toBe(200);
      expect((await revoke(b, { jti, expiresAt: exp * 1000 })).status).toBe(204);
      expect(await whoami(b, token)).toEqual({ status: 401, error: 'ENTRY_TOKEN_REVOKED' });
    }
    // Kept as long as the token could be taken (exp plus the tolerance), and a day at least.
    const keptUntil = await client.pexpiretime('{entry}:revoked:jti:late-redis');
    expect(keptUntil).toBeGreaterThan(Date.now() + 86_000_000);
  });

  it('answers 204 for a token past its exp and the tolerance, and keeps the revocation a day, for the sessions that outlive it', async () => {
    const exp = Math.floor(Date.now() / 1000) - 3600;
    for (const body of [{ jti: 'gone-1', expiresAt: exp * 1000 }, { jti: 'gone-1', expiresAt: new Date(exp * 1000).toISOString() }]) {
      const asked = Date.now();
      const res = await revoke(shared, body);
      expect(res.status, JSON.stringify(body)).toBe(204);
      const keptUntil = await client.pexpiretime('{entry}:revoked:jti:gone-1');
      expect(keptUntil, JSON.stringify(body)).toBeGreaterThanOrEqual(asked + 86_400_000);
      expect(keptUntil, JSON.stringify(body)).toBeLessThanOrEqual(Date.now() + 86_400_000);
    }
    // The token is refused for what it is, expired, as before.
    expect(await whoami(shared, await tokenOf(shared, 'gone-1', exp))).toEqual({ status: 401, error: 'ENTRY_TOKEN_EXPIRED' });
    // The admin's act is in the audit trail all the same.
    const admin = await shared.mint({ roles: ['entry-admin'] }, { user: 'boss' });
    const trail = (await (await fetch(`${shared.url}/api/audit?type=token.revoke`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { events: Array<{ jti?: string }> };
    expect(trail.events.filter((e) => e.jti === 'gone-1')).toHaveLength(2);
  });
});

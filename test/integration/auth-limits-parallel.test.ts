import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestRedis } from '../helpers/redis.js';

const LIMIT = 5;
const PARALLEL = 200;

describe('the auth-failure limit under parallel requests', () => {
  const redis = new TestRedis();
  let memory: TestBroker;
  let shared: TestBroker;

  beforeAll(async () => {
    await redis.start();
    const limits = { 'auth-failure-limit': LIMIT, 'auth-failure-window': 60_000 };
    [memory, shared] = await Promise.all([startTestBroker(limits), startTestBroker({ ...limits, 'redis-url': redis.url })]);
  });
  afterAll(async () => {
    await Promise.all([memory?.stop(), shared?.stop()]);
    await redis.stop();
  });

  const statuses = (b: TestBroker, token: string) =>
    Promise.all(Array.from({ length: PARALLEL }, async () => (await fetch(`${b.url}/api/whoami`, { headers: { authorization: `Bearer ${token}` } })).status));

  for (const [name, broker] of [['in memory', () => memory], ['in Redis', () => shared]] as const) {
    it(`answers 401 to as many of ${PARALLEL} parallel bad requests as the limit allows and 429 to the rest, failures counted ${name}`, async () => {
      const b = broker();
      // A busy client first: its parallel good requests all pass, and count nothing.
      expect(new Set(await statuses(b, await b.mint({ apps: ['*'] })))).toEqual(new Set([200]));
      // Well formed, signed by a key the broker does not trust: checked as far as its signature.
      const forged = await new SignJWT({ apps: ['*'] }).setProtectedHeader({ alg: 'EdDSA' }).setSubject('mallory').setIssuedAt().setExpirationTime('1h').sign(generateKeyPairSync('ed25519').privateKey);
      const got = await statuses(b, forged);
      const count = (status: number) => got.filter((s) => s === status).length;
      console.log(`auth-limits-parallel (${name}): ${count(401)} × 401, ${count(429)} × 429`);
      expect(count(401)).toBe(LIMIT);
      expect(count(429)).toBe(PARALLEL - LIMIT);
    });
  }
});

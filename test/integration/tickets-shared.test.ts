import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeExecSpec, encodeRequest, RequestType } from '../../proto/codec.js';
import { TICKETS_PER_USER_PER_MINUTE } from '../../broker/http/api.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { execCreateCount, TestContainers, uniqueApp } from '../helpers/containers.js';
import { TestRedis } from '../helpers/redis.js';
import { WireClient } from '../helpers/wire-client.js';

describe('tickets against revocation and per-user limits, with Redis', () => {
  const containers = new TestContainers();
  const redis = new TestRedis();
  const app = uniqueApp();
  let b: TestBroker;
  let containerId: string;
  const target = { app, proc: 'web', instance: 1 };

  beforeAll(async () => {
    await redis.start();
    containerId = await containers.entry(app, 'web', 1);
    b = await startTestBroker({ 'redis-url': redis.url });
  });
  afterAll(async () => {
    await b?.stop();
    await redis.stop();
    await containers.removeAll();
  });

  const post = (path: string, token: string, body: object) =>
    fetch(`${b.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const ticketFor = async (token: string) => {
    const res = await post('/api/tickets', token, target);
    expect(res.status).toBe(200);
    return ((await res.json()) as { ticket: string }).ticket;
  };
  /** Redeems `ticket` on a browser-style socket and runs `echo`; the close message tells how it went. */
  const redeem = async (ticket: string) => {
    const c = await WireClient.connect(`${b.wsUrl}?${new URLSearchParams({ app, proc: 'web', instance: '1', ticket })}`, {}, ['entry.v1']);
    c.ws.send(encodeRequest(RequestType.START, encodeExecSpec({ argv: [Buffer.from('echo'), Buffer.from('via-ticket')] })));
    const closed = await c.closed;
    return { closed, code: c.closeMessage()?.code ?? '', stdout: c.stdoutText() };
  };

  it('refuses a ticket minted before its user was revoked, or its token', async () => {
    const admin = await b.mint({ roles: ['entry-admin'] }, { user: 'boss' });
    // Issued a minute ago, so "every token of the user issued before now" covers it whatever the clock's second.
    const userToken = await new SignJWT({ apps: [app] }).setProtectedHeader({ alg: 'EdDSA' }).setSubject('uma').setIssuedAt(Math.floor(Date.now() / 1000) - 60).setExpirationTime('1h').sign(b.privateKey);
    const jtiToken = await new SignJWT({ apps: [app] }).setProtectedHeader({ alg: 'EdDSA' }).setSubject('jon').setJti('ticket-minter').setIssuedAt().setExpirationTime('1h').sign(b.privateKey);
    const bystander = await b.mint({ apps: [app] }, { user: 'bea' });
    const [byUser, byJti, untouched] = [await ticketFor(userToken), await ticketFor(jtiToken), await ticketFor(bystander)];
    const since = Date.now();
    expect((await post('/api/revocations', admin, { user: 'uma' })).status).toBe(204);
    expect((await post('/api/revocations', admin, { jti: 'ticket-minter' })).status).toBe(204);

    for (const [what, ticket] of [['user revoked', byUser], ['jti revoked', byJti]] as const) {
      const r = await redeem(ticket);
      expect(r.closed.code, what).toBe(4401);
      expect(r.code, what).toBe('ENTRY_TOKEN_REVOKED');
      expect(r.stdout, what).toBe('');
    }
    expect(await execCreateCount(containerId, since)).toBe(0);
    const ok = await redeem(untouched);
    expect(ok.code).toBe('');
    expect(ok.stdout).toBe('via-ticket\n');
  });

  it(`issues a user at most ${TICKETS_PER_USER_PER_MINUTE} tickets a minute, then answers 429 with Retry-After`, async () => {
    const greedy = await b.mint({ apps: [app] }, { user: 'greedy' });
    const statuses = new Map<number, number>();
    for (let sent = 0; sent < TICKETS_PER_USER_PER_MINUTE; sent += 50) {
      const batch = await Promise.all(Array.from({ length: Math.min(50, TICKETS_PER_USER_PER_MINUTE - sent) }, () => post('/api/tickets', greedy, target)));
      for (const res of batch) {
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        await res.arrayBuffer();
      }
    }
    expect(Object.fromEntries(statuses)).toEqual({ 200: TICKETS_PER_USER_PER_MINUTE });
    const over = await post('/api/tickets', greedy, target);
    expect(over.status).toBe(429);
    expect((await over.json()) as { error: string; message: string }).toMatchObject({
      error: 'ENTRY_RATE_LIMITED',
      message: expect.stringContaining(`this user was issued ${TICKETS_PER_USER_PER_MINUTE} tickets within a minute: retry in`),
    });
    const retryAfter = Number(over.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Another user of the same app is not held back by it, and the greedy token still authenticates.
    expect((await post('/api/tickets', await b.mint({ apps: [app] }, { user: 'modest' }), target)).status).toBe(200);
    expect((await fetch(`${b.url}/api/whoami`, { headers: { authorization: `Bearer ${greedy}` } })).status).toBe(200);
  });
});

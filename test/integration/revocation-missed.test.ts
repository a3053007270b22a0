import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { TestRedis } from '../helpers/redis.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/** How long B's link to Redis is down while the revocation is sent. */
const LINK_DOWN_MS = 4_000;

describe('a revocation sent while a broker cannot hear it', () => {
  const containers = new TestContainers();
  const redis = new TestRedis();
  const app = uniqueApp();
  let link: TcpProxy;
  let a: TestBroker;
  let b: TestBroker;
  let containerId: string;
  const target = { app, proc: 'web', instance: 1 };

  beforeAll(async () => {
    await redis.start();
    link = new TcpProxy(`http://127.0.0.1:${redis.port}`);
    await link.start();
    containerId = await containers.entry(app, 'web', 1);
    // B reaches Redis only through the proxy; A directly. B's periodic check every 200 s (a
    // --session-ttl of 10 min): only the check when its link comes back can end the session in time.
    // A takes no clock tolerance: a token is past its time the moment its exp is.
    [a, b] = await Promise.all([startTestBroker({ 'redis-url': redis.url, 'clock-tolerance': '0' }), startTestBroker({ 'redis-url': `redis://127.0.0.1:${link.port}`, 'kill-grace': '300', 'session-ttl': '600000' })]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await link?.stop();
    await redis.stop();
    await containers.removeAll();
  });

  it("ends the session on a broker whose link to Redis was down when the revocation was published, once the link is back", async () => {
    const admin = await a.mint({ roles: ['entry-admin'] }, { user: 'boss' });
    const s = await openCommand(b.wsUrl, await b.mint({ apps: [app] }, { user: 'frank' }), target, ['sh', '-c', 'echo up; sleep 1021']);
    await s.waitFor(() => s.stdoutText() === 'up\n', 'the session');
    link.cut(LINK_DOWN_MS);
    const back = performance.now() + LINK_DOWN_MS;
    const res = await fetch(`${a.url}/api/revocations`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ user: 'frank', before: Date.now() + 1_000 }) });
    expect(res.status).toBe(204);
    const closed = await Promise.race([s.closed.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), LINK_DOWN_MS + 6_000))]);
    const afterLinkMs = performance.now() - back;
    expect(closed, 'the session to end').toBe(true);
    console.log(`revocation-missed: the session ended ${afterLinkMs.toFixed(0)} ms after B's link to Redis came back`);
    expect(afterLinkMs).toBeLessThan(4_000);
    expect(s.closeMessage()).toMatchObject({ code: 'ENTRY_TOKEN_REVOKED' });
    await eventually(async () => (await containerProcesses(containerId)).every((p) => !p.includes('sleep 1021')), 'the process to be gone');
    await eventually(async () => {
      const audit = await fetch(`${a.url}/api/audit?type=session.kill&user=frank`, { headers: { authorization: `Bearer ${admin}` } });
      const events = ((await audit.json()) as { events: Array<{ by: string }> }).events;
      return events.length === 1 && events[0]!.by === 'stored revocation';
    }, 'the kill in the audit trail');
  });

  it('ends a session whose token expired before it was revoked: the revocation is kept in the store for such sessions', async () => {
    const admin = await a.mint({ roles: ['entry-admin'] }, { user: 'boss' });
    const token = await b.mint({ apps: [app], jti: 'short-lived' }, { user: 'gail', expiresIn: '2s' });
    const expMs = decodeJwt(token).exp! * 1000;
    const s = await openCommand(b.wsUrl, token, target, ['sh', '-c', 'echo up; sleep 1022']);
    await s.waitFor(() => s.stdoutText() === 'up\n', 'the session');
    // Sessions outlive their token: past its exp, this one runs on.
    await sleep(Math.max(0, expMs - Date.now() + 200));
    link.cut(LINK_DOWN_MS);
    const res = await fetch(`${a.url}/api/revocations`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ jti: 'short-lived', expiresAt: expMs }) });
    expect(res.status).toBe(204);
    const closed = await Promise.race([s.closed.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), LINK_DOWN_MS + 6_000))]);
    expect(closed, 'the session to end once B finds the revocation').toBe(true);
    expect(s.closeMessage()).toMatchObject({ code: 'ENTRY_TOKEN_REVOKED' });
    await eventually(async () => (await containerProcesses(containerId)).every((p) => !p.includes('sleep 1022')), 'the process to be gone');
  });
});

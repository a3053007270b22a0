import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import { WireClient } from '../helpers/wire-client.js';

/** Long enough for six requests and a socket to fit in it on a loaded machine. */
const WINDOW_MS = 5_000;

describe('auth-failure limits and token revocation', () => {
  const containers = new TestContainers();
  const app = uniqueApp();
  let b: TestBroker;

  beforeAll(async () => {
    b = await startTestBroker({ 'auth-failure-limit': 3, 'auth-failure-window': WINDOW_MS });
    await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await b.stop();
    await containers.removeAll();
  });

  const target = { app, proc: 'web', instance: 1 };

  it('answers 429 with Retry-After after repeated failures from one address, then refuses sockets too', async () => {
    const statuses: number[] = [];
    // The window opens with the first failure, no earlier than this.
    const firstFailure = Date.now();
    for (let i = 0; i < 4; i++) statuses.push((await fetch(`${b.url}/api/whoami`, { headers: { authorization: 'Bearer junk' } })).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    const limited = await fetch(`${b.url}/api/whoami`, { headers: { authorization: `Bearer ${await b.mint({ apps: [app] })}` } });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const c = await WireClient.connect(b.wsUrl, { 'access-token': 'junk', 'app-name': app, 'proc-name': 'web', 'instance-no': '1' });
    const closed = await c.closed;
    expect(closed.code).toBe(4429);
    expect(new TextDecoder().decode(c.closeMessage()!.content)).toMatch(/this address failed to authenticate too often/);
    // The window passes: a good token works again, and not before (a refusal while limited
    // counts no further failure, so asking again does not push the window on).
    const good = await b.mint({ apps: [app] });
    await eventually(async () => (await fetch(`${b.url}/api/whoami`, { headers: { authorization: `Bearer ${good}` } })).status === 200, 'the window to pass', 3 * WINDOW_MS);
    expect(Date.now() - firstFailure).toBeGreaterThanOrEqual(WINDOW_MS);
  });

  it('refuses a revoked jti, and every token of a user issued before a time', async () => {
    const admin = await b.mint({ roles: ['entry-admin'] }, { user: 'boss' });
    const revoke = (body: object) => fetch(`${b.url}/api/revocations`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const withJti = await new SignJWT({ apps: [app] }).setProtectedHeader({ alg: 'EdDSA' }).setSubject('jo').setJti('token-1').setIssuedAt().setExpirationTime('1h').sign(b.privateKey);
    const ok = await openCommand(b.wsUrl, withJti, target, ['true']);
    await ok.closed;
    expect(ok.closeMessage()!.code).toBe('');
    expect((await revoke({ jti: 'token-1' })).status).toBe(204);
    const refused = await openCommand(b.wsUrl, withJti, target, ['true']);
    await refused.closed;
    expect(refused.closeMessage()!.code).toBe('ENTRY_TOKEN_REVOKED');

    const old = await new SignJWT({ apps: [app] }).setProtectedHeader({ alg: 'EdDSA' }).setSubject('max').setIssuedAt(Math.floor(Date.now() / 1000) - 60).setExpirationTime('1h').sign(b.privateKey);
    expect((await revoke({ user: 'max', before: new Date(Date.now() - 30_000).toISOString() })).status).toBe(204);
    const stale = await openCommand(b.wsUrl, old, target, ['true']);
    await stale.closed;
    expect(stale.closeMessage()!.code).toBe('ENTRY_TOKEN_REVOKED');
    const fresh = await openCommand(b.wsUrl, await b.mint({ apps: [app] }, { user: 'max' }), target, ['true']);
    await fresh.closed;
    expect(fresh.closeMessage()!.code).toBe('');

    const notAdmin = await fetch(`${b.url}/api/revocations`, { method: 'POST', headers: { authorization: `Bearer ${await b.mint({ apps: ['*'] })}`, 'content-type': 'application/json' }, body: '{"user":"x"}' });
    expect(notAdmin.status).toBe(403);

    // Each revocation is in the audit trail with the admin who made it.
    const trail = await fetch(`${b.url}/api/audit?type=token.revoke`, { headers: { authorization: `Bearer ${admin}` } });
    const { events } = (await trail.json()) as { events: Array<Record<string, unknown>> };
    expect(events.map(({ by, jti, user, until, before }) => ({ by, jti, user, until: typeof until, before: typeof before })).reverse()).toEqual([
      { by: 'boss', jti: 'token-1', user: undefined, until: 'string', before: 'undefined' },
      { by: 'boss', jti: undefined, user: 'max', until: 'undefined', before: 'string' },
    ]);

    // Times no Date (or Redis) can hold are refused, not stored as "forever".
    // So are revocations that would revoke nothing: an empty name, seconds taken for ms, a mix.
    const inSeconds = Math.floor(Date.now() / 1000);
    for (const body of [
      '{"jti":"t","expiresAt":1e400}',
      '{"jti":"t","expiresAt":-5}',
      '{"user":"x","before":9e15}',
      '{"user":"x","before":"someday"}',
      '{"jti":""}',
      '{"user":""}',
      '{"user":7}',
      `{"user":"x","before":${inSeconds}}`,
      `{"jti":"t","expiresAt":${inSeconds + 3600}}`,
      '{"jti":"t","user":"x"}',
      '{"user":"x","expiresAt":"2030-01-01T00:00:00Z"}',
      '{}',
    ]) {
      const res = await fetch(`${b.url}/api/revocations`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body });
      expect(res.status, body).toBe(400);
      expect(((await res.json()) as { error: string }).error, body).toBe('ENTRY_BAD_REQUEST');
    }
  });

  it('ends the sessions open with a token a revocation covers, saying why, and leaves the others running', async () => {
    const admin = await b.mint({ roles: ['entry-admin'] }, { user: 'boss' });
    const revoke = (body: object) => fetch(`${b.url}/api/revocations`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const issuedAgo = (s: number, user: string, jti: string) => new SignJWT({ apps: [app] }).setProtectedHeader({ alg: 'EdDSA' }).setSubject(user).setJti(jti).setIssuedAt(Math.floor(Date.now() / 1000) - s).setExpirationTime('1h').sign(b.privateKey);
    const open = async (token: string) => {
      const c = await openCommand(b.wsUrl, token, target, ['sh', '-c', 'echo up; exec cat']);
      await c.waitFor(() => c.stdoutText() === 'up\n', 'up');
      return c;
    };
    const stolen = await open(await issuedAgo(120, 'rev', 'rev-1'));
    const renewed = await open(await issuedAgo(0, 'rev', 'rev-2'));
    const byJti = await open(await issuedAgo(0, 'rev', 'rev-3'));
    const someoneElse = await open(await issuedAgo(120, 'other', 'rev-4'));
    // Every token of the user issued more than a minute ago.
    expect((await revoke({ user: 'rev', before: new Date(Date.now() - 60_000).toISOString() })).status).toBe(204);
    await stolen.closed;
    expect(stolen.closeMessage()).toMatchObject({ code: 'ENTRY_TOKEN_REVOKED' });
    expect(new TextDecoder().decode(stolen.closeMessage()!.content)).toMatch(/access token revoked: by boss/);
    expect((await revoke({ jti: 'rev-3' })).status).toBe(204);
    await byJti.closed;
    expect(byJti.closeMessage()).toMatchObject({ code: 'ENTRY_TOKEN_REVOKED' });
    // The others run on: a token issued since, and another user's.
    for (const c of [renewed, someoneElse]) {
      c.type('still\n');
      await c.waitFor(() => c.stdoutText().includes('still'), 'still running');
      c.ws.close();
      await c.closed;
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, UnsecuredJWT } from 'jose';
import { generateKeyPairSync } from 'node:crypto';
import { ResponseType } from '../../proto/codec.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { execCreateCount, TestContainers, uniqueApp } from '../helpers/containers.js';
import { WireClient } from '../helpers/wire-client.js';

describe('authentication on the upgrade', () => {
  const containers = new TestContainers();
  const app = uniqueApp();
  let b: TestBroker;
  let containerId: string;

  beforeAll(async () => {
    b = await startTestBroker({ 'deny-apps': ['entry', 'secret-*'] });
    containerId = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await b.stop();
    await containers.removeAll();
  });

  const headers = (token: string | undefined, target = app) => ({
    ...(token !== undefined ? { 'access-token': token } : {}),
    'app-name': target,
    'proc-name': 'web',
    'instance-no': '1',
  });

  async function refusedWith(token: string | undefined, target = app) {
    const c = await WireClient.connect(b.wsUrl, headers(token, target));
    const closed = await c.closed;
    const close = c.closeMessage();
    expect(close, 'a CLOSE message reaches the original-style client').toBeDefined();
    expect(c.messages.filter((m) => m.msgType === ResponseType.STDOUT)).toHaveLength(0);
    return { text: new TextDecoder().decode(close!.content), code: closed.code };
  }

  it('refuses every kind of wrong token with a red CLOSE line and never reaches Docker exec', async () => {
    const since = Date.now();
    const other = generateKeyPairSync('ed25519').privateKey;
    const cases: Array<[string, string | undefined, RegExp, number]> = [
      ['no token', undefined, /no access token/, 4401],
      ['empty token', '', /no access token/, 4401],
      ['garbage', 'not-a-jwt', /invalid access token/, 4401],
      ['wrong key', await new SignJWT({ apps: ['*'] }).setProtectedHeader({ alg: 'EdDSA' }).setSubject('mallory').setExpirationTime('1h').sign(other), /signature/, 4401],
      ['expired', await b.mint({ apps: ['*'] }, { expiresIn: Math.floor(Date.now() / 1000) - 3600 }), /expired/, 4401],
      ['no exp', await b.mint({ apps: ['*'] }, { noExp: true }), /exp/, 4401],
      ['alg none', new UnsecuredJWT({ apps: ['*'], sub: 'mallory' }).setExpirationTime('1h').encode(), /invalid access token/, 4401],
      ['no grant for the app', await b.mint({ apps: ['other-*'] }), /no grant for app/, 4403],
    ];
    for (const [what, token, message, closeCode] of cases) {
      const r = await refusedWith(token);
      expect(r.text, what).toMatch(message);
      expect(r.text, `${what}: red line`).toContain('\x1b[31m');
      expect(r.code, what).toBe(closeCode);
    }
    expect(await execCreateCount(containerId, since)).toBe(0);
  });

  it('refuses apps on the deny list even for admins', async () => {
    const admin = await b.mint({ roles: ['entry-admin'] });
    const r = await refusedWith(admin, 'secret-vault');
    expect(r.text).toMatch(/never enterable/);
    expect(r.code).toBe(4403);
  });

  it('accepts a valid token (the same check can succeed, so the zero above means something)', async () => {
    const since = Date.now();
    const c = await WireClient.connect(b.wsUrl, headers(await b.mint({ apps: [app] })));
    c.send(1, '80 24');
    c.type('exit\r');
    await c.closed;
    expect(new TextDecoder().decode(c.closeMessage()!.content)).toMatch(/exited with code 0/);
    expect(await execCreateCount(containerId, since)).toBeGreaterThanOrEqual(1);
  });

  it('takes the token from Authorization: Bearer too', async () => {
    const token = await b.mint({ apps: ['t*'] });
    const c = await WireClient.connect(b.wsUrl, { authorization: `Bearer ${token}`, 'app-name': app, 'proc-name': 'web', 'instance-no': '1' });
    c.type('exit 3\r');
    await c.closed;
    expect(new TextDecoder().decode(c.closeMessage()!.content)).toMatch(/exited with code 3/);
  });

  it('never writes the token to the log', async () => {
    const token = await b.mint({ apps: [app] });
    const c = await WireClient.connect(b.wsUrl, headers(token));
    c.type('exit\r');
    await c.closed;
    const bad = 'x'.repeat(40) + token.slice(10);
    await refusedWith(bad);
    const all = b.logs.join('\n');
    expect(all).toContain('session end');
    expect(all).not.toContain(token);
    expect(all).not.toContain(bad);
  });
});

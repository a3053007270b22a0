import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SavedConfig } from '../../client/config/store.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { CLI, runCli } from '../helpers/cli.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { CLIENT_ID, launchBrowser, loopbackPage, signInAndConsent, spawnCli, startOidcProvider, type TestProvider } from '../helpers/oidc-provider.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

describe('enter login against a real OpenID provider', () => {
  const containers = new TestContainers();
  const app = uniqueApp('oidc');
  const dir = mkdtempSync(join(tmpdir(), 'entry-login-'));
  const env = { ENTRY_CONFIG_DIR: dir, ENTRY_TOKEN: '', ENTRY_BROKER: '' };
  const config = () => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as SavedConfig;
  const enter = (args: string[]) => runCli(args, env);
  let op: TestProvider;
  let b: TestBroker;
  let plain: TestBroker;
  let browser: Browser;

  beforeAll(async () => {
    op = await startOidcProvider({ alice: { apps: [app] }, bob: { apps: ['billing-*'], roles: ['auditor'] } });
    // The broker trusts the provider's keys (JWKS on loopback) and tells clients where to log in.
    b = await startTestBroker({
      'jwt-public-key': undefined,
      'jwks-url': op.jwksUrl,
      issuer: op.issuer,
      audience: CLIENT_ID,
      'oidc-issuer': op.issuer,
      'oidc-client-id': CLIENT_ID,
      'oidc-scopes': 'openid profile offline_access entry',
    });
    plain = await startTestBroker();
    await containers.entry(app, 'web', 1);
    browser = await launchBrowser();
    expect((await enter(['broker', 'add', 'corp', b.url])).status).toBe(0);
  });
  afterAll(async () => {
    await browser?.close();
    await b?.stop();
    await plain?.stop();
    await op?.stop();
    await containers.removeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('GET /api/config tells the version and the provider, without a token', async () => {
    const res = await fetch(`${b.url}/api/config`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ version: pkg.version, oidc: { issuer: op.issuer, clientId: CLIENT_ID, scopes: ['openid', 'profile', 'offline_access', 'entry'] } });
    expect(await (await fetch(`${plain.url}/api/config`)).json()).toEqual({ version: pkg.version, oidc: null });
  });

  it('logs in with the authorization code flow and PKCE through a loopback redirect', async () => {
    const login = spawnCli(CLI, ['login', '--browser', '--no-open'], env);
    const [url] = await login.waitForStderr(/http:\/\/127\.0\.0\.1:\d+\/auth\?\S+/);
    const auth = new URL(url);
    expect(auth.origin).toBe(op.issuer);
    expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
    expect(auth.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(auth.searchParams.get('redirect_uri')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    expect(auth.searchParams.get('client_id')).toBe(CLIENT_ID);

    const page = await loopbackPage(browser);
    await page.goto(url);
    await signInAndConsent(page, 'alice');
    await page.waitForURL(/127\.0\.0\.1:\d+\/callback/);
    expect(await page.textContent('h1')).toBe('Logged in to Entry');
    await page.close();
    const done = await login.exited;
    expect(done.status, done.stderr).toBe(0);
    expect(done.stderr).toMatch(/Logged in to corp as alice/);

    const saved = config().profiles!['corp']!;
    expect(saved.token).toMatch(/^ey/);
    expect(saved.refreshToken).toBeTruthy();
    expect(saved.oidc).toEqual({ issuer: op.issuer, clientId: CLIENT_ID });
    expect(statSync(join(dir, 'config.json')).mode & 0o777).toBe(0o600);

    // The broker verifies the ID token through the provider's JWKS.
    const status = await enter(['status', '--json']);
    expect(status.status, status.stderr.toString()).toBe(0);
    const report = JSON.parse(status.stdout.toString());
    expect(report.identity).toMatchObject({ valid: true, user: 'alice', apps: [app], admin: false });
    expect(report.login).toMatchObject({ source: 'oidc', issuer: op.issuer, refreshable: true });
    const run = await enter([app, 'web', '1', '--', 'echo', 'through-oidc']);
    expect(run.stdout.toString()).toBe('through-oidc\n');
  });

  it('refreshes a token that is about to expire, before using it', async () => {
    const before = config();
    const old = before.profiles!['corp']!;
    before.profiles!['corp'] = { ...old, expiresAt: Math.floor(Date.now() / 1000) + 10 };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(before));
    const ls = await enter(['ls', '--json']);
    expect(ls.status, ls.stderr.toString()).toBe(0);
    expect(JSON.parse(ls.stdout.toString())).toEqual([expect.objectContaining({ app, proc: 'web', instance: '1', state: 'running', host: 'local' })]);
    const after = config().profiles!['corp']!;
    // Renewed: a new expiry, and a new refresh token (the provider rotates them for public
    // clients). The access token itself may read the same when it is issued in the same second
    // as the one it replaces.
    expect(after.expiresAt, ls.stderr.toString()).toBeGreaterThan(Date.now() / 1000 + 600);
    expect(after.refreshToken).not.toBe(old.refreshToken);
  });

  it('says to log in again when the token expired and cannot be refreshed', async () => {
    const c = config();
    const saved = c.profiles!['corp']!;
    c.profiles!['corp'] = { ...saved, refreshToken: 'not-a-refresh-token', expiresAt: Math.floor(Date.now() / 1000) - 5 };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(c), { mode: 0o600 });
    const ls = await enter(['ls']);
    expect(ls.status).toBe(255);
    expect(ls.stderr.toString()).toMatch(/^enter: your login to corp expired and refreshing the token failed: invalid_grant/);
    expect(ls.stderr.toString()).toMatch(/run `enter login`/);
    c.profiles!['corp'] = saved;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(c), { mode: 0o600 });
  });

  it('logs in with the device flow, approved in the browser', async () => {
    expect((await enter(['broker', 'add', 'corp-device', b.url])).status).toBe(0);
    const login = spawnCli(CLI, ['login', '--device', '--no-open', '-b', 'corp-device'], env);
    const [, code] = await login.waitForStderr(/enter the code:\s+(\S+)/);
    const [, complete] = await login.waitForStderr(/\(or open (\S+)\)/);
    expect(complete).toContain(encodeURIComponent(code!).replace(/%20/g, '+').slice(0, 4));
    const page = await loopbackPage(browser);
    await page.goto(`${op.issuer}/device`);
    await page.locator('input[name="user_code"]').fill(code!);
    await page.locator('[type="submit"]').first().click();
    await page.waitForLoadState();
    // Confirm the device, then sign in and consent.
    await page.locator('button[autofocus]').click();
    await page.waitForLoadState();
    await signInAndConsent(page, 'bob');
    await page.waitForFunction(() => /Sign-in Success|success/i.test(document.body.innerText));
    await page.close();
    const done = await login.exited;
    expect(done.status, done.stderr).toBe(0);
    expect(done.stderr).toMatch(/Logged in to corp-device as bob/);
    const status = await enter(['-b', 'corp-device', 'status']);
    expect(status.status, status.stderr.toString()).toBe(0);
    expect(status.stdout.toString()).toMatch(/^user\s+bob$/m);
    expect(status.stdout.toString()).toMatch(/^apps\s+billing-\*$/m);
    expect(status.stdout.toString()).toMatch(/^roles\s+auditor$/m);
    // bob may not enter alice's app: the refusal names the missing grant.
    const denied = await enter(['-b', 'corp-device', app, 'web', '1', '--', 'true']);
    expect(denied.status).toBe(255);
    expect(denied.stderr.toString()).toContain(`Missing grant: app "${app}" for user bob (your token grants apps: billing-*)`);
  });

  it('logs out: forgets the tokens and revokes the refresh token at the provider', async () => {
    const refreshToken = config().profiles!['corp']!.refreshToken!;
    // The last login chose the default broker.
    expect(config().current).toBe('corp-device');
    const out = await enter(['logout', '-b', 'corp']);
    expect(out.status, out.stderr.toString()).toBe(0);
    expect(out.stderr.toString()).toMatch(/logged out of corp: token forgotten, refresh token revoked/);
    expect(config().profiles!['corp']).toEqual({ url: b.url });
    const status = await enter(['-b', 'corp', 'status']);
    expect(status.status).toBe(255);
    expect(status.stdout.toString()).toMatch(/not logged in/);
    const ls = await enter(['-b', 'corp', 'ls']);
    expect(ls.stderr.toString()).toMatch(/not logged in to corp: run `enter login -b corp`/);
    // The provider no longer honours the refresh token.
    const client = await oidc.discovery(new URL(op.issuer), CLIENT_ID, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    await expect(oidc.refreshTokenGrant(client, refreshToken)).rejects.toMatchObject({ error: 'invalid_grant' });
    // The other profile is still logged in.
    expect((await enter(['-b', 'corp-device', 'status'])).status).toBe(0);
  });

  it('keeps the pasted-token login, and says when a broker offers no OIDC login', async () => {
    const token = await plain.mint({ apps: [app] });
    const pasted = await runCli(['login', '-b', plain.url], env, `${token}\n`);
    expect(pasted.status, pasted.stderr.toString()).toBe(0);
    expect(config().brokers[plain.url]?.token).toBe(token);
    const device = await enter(['login', '-b', plain.url, '--device']);
    expect(device.status).toBe(255);
    expect(device.stderr.toString()).toMatch(/offers no OIDC login/);
  });
});

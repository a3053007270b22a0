import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CLIENT_ID = 'entry-cli';

/** What each test user's tokens say: Entry reads `apps` and `roles`. */
export type Accounts = Record<string, { apps: string[]; roles?: string[] }>;

export interface TestProvider {
  issuer: string;
  jwksUrl: string;
  provider: Provider;
  stop(): Promise<void>;
}

/**
 * A real OpenID Provider (node-oidc-provider) on a loopback port: the `entry-cli` public native
 * client (any loopback redirect port, PKCE required), the device flow, refresh tokens and
 * revocation, and ID tokens that carry the `apps` and `roles` claims of the `entry` scope.
 * Its development login and consent pages accept any password.
 */
export async function startOidcProvider(accounts: Accounts): Promise<TestProvider> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: 'test-rs256', alg: 'RS256', use: 'sig' };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['http://127.0.0.1/callback'],
        grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: ['entry-test-cookie-key-0123456789'] },
    scopes: ['openid', 'offline_access', 'profile', 'entry'],
    claims: { openid: ['sub'], profile: ['preferred_username'], entry: ['apps', 'roles'] },
    // The ID token is what the CLI sends to the broker: let it carry the requested claims.
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 3600, IdToken: 3600, RefreshToken: 86_400, DeviceCode: 600 },
    async findAccount(_ctx, id) {
      const account = accounts[id] ?? { apps: [] };
      return {
        accountId: id,
        async claims() {
          return { sub: id, preferred_username: id, apps: account.apps, roles: account.roles ?? [] };
        },
      };
    },
  });
  // The development pages are loud about being for development only.
  provider.on('server_error', (_ctx, err) => process.stderr.write(`oidc-provider: ${err.message}\n`));
  server.on('request', provider.callback());
  return {
    issuer,
    jwksUrl: `${issuer}/jwks`,
    provider,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Debian's Chromium, headless; installed by deploy/dev/test.sh. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env['ENTRY_CHROMIUM'] ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** A page that may only talk to loopback (the provider's pages link web fonts). */
export async function loopbackPage(browser: Browser): Promise<Page> {
  const page = await browser.newPage();
  await page.route('**/*', (route) => {
    const host = new URL(route.request().url()).hostname;
    return host === '127.0.0.1' || host === 'localhost' ? route.continue() : route.abort();
  });
  return page;
}

/** Signs in on the provider's development login page and accepts the consent page. */
export async function signInAndConsent(page: Page, user: string): Promise<void> {
  await page.locator('input[name="login"]').fill(user);
  await page.locator('input[name="password"]').fill('any-password');
  await page.locator('button[type="submit"]').click();
  await page.waitForLoadState();
  // Consent is asked for the scopes (and offline access) the first time.
  const consent = page.locator('button[type="submit"][autofocus], button.login-submit');
  if (await page.locator('input[name="login"]').count() === 0 && (await consent.count()) > 0) {
    await consent.first().click();
    await page.waitForLoadState();
  }
}

export interface RunningCli {
  /** Resolves with the first match of `pattern` in stderr so far or to come. */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ status: number | null; stdout: string; stderr: string }>;
  kill(): void;
}

/** The built CLI as a child whose stderr can be waited on while it runs (login prints a URL). */
export function spawnCli(cli: string, args: string[], env: Record<string, string>): RunningCli {
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
    for (const w of waiters.slice()) w();
  });
  const exited = new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (status) => {
      for (const w of waiters.slice()) w();
      resolve({ status, stdout, stderr });
    }),
  );
  return {
    waitForStderr(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`stderr never matched ${pattern}:\n${stderr}`)), timeoutMs);
        const check = () => {
          const m = pattern.exec(stderr);
          if (m) {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(check), 1);
            resolve(m);
          } else if (child.exitCode !== null) {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(check), 1);
            reject(new Error(`enter exited (${child.exitCode}) before stderr matched ${pattern}:\n${stderr}`));
          }
        };
        waiters.push(check);
        check();
      });
    },
    exited,
    kill: () => child.kill('SIGKILL'),
  };
}

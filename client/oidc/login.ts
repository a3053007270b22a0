import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import type { Credentials } from '../config/store.js';
import { ClientError } from '../protocol/client-error.js';
import { openBrowser } from './browser.js';
import { connectProvider, describe, type OidcSettings } from './provider.js';
import { credentialsFrom, type TokenResponse } from './tokens.js';

export interface LoginOptions {
  settings: OidcSettings;
  /** Where progress and the URL to visit are written (stderr). */
  say: (line: string) => void;
  /** Start a browser on the URL (else only print it). */
  open: boolean;
  /** Loopback port for the redirect; 0 picks a free one (RFC 8252 §7.3). */
  port?: number;
  /** How long to wait for the user, ms. */
  timeoutMs?: number;
}

/** The scopes, with `prompt=consent` when offline access (a refresh token) is asked for (OIDC Core §11). */
function authParameters(settings: OidcSettings): Record<string, string> {
  return {
    scope: settings.scopes.join(' '),
    ...(settings.scopes.includes('offline_access') ? { prompt: 'consent' } : {}),
  };
}

const PAGE = (title: string, text: string) =>
  `<!doctype html><meta charset="utf-8"><title>${title}</title>` +
  `<body style="font:16px system-ui,sans-serif;margin:4em auto;max-width:32em"><h1>${title}</h1><p>${text}</p></body>`;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Authorization code flow with PKCE and a loopback redirect (RFC 8252): a one-shot HTTP server
 * on 127.0.0.1 receives the code, which is exchanged with the verifier only this process knows.
 */
export async function loginWithBrowser(o: LoginOptions): Promise<Credentials> {
  const config = await connectProvider(o.settings);
  const verifier = oidc.randomPKCECodeVerifier();
  const challenge = await oidc.calculatePKCECodeChallenge(verifier);
  const state = oidc.randomState();
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, '127.0.0.1', () => resolve());
  });
  try {
    const port = (server.address() as AddressInfo).port;
    const redirectUri = `http://127.0.0.1:${port}/callback`;
    const url = oidc.buildAuthorizationUrl(config, {
      ...authParameters(o.settings),
      redirect_uri: redirectUri,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state,
    });
    const opened = o.open && (await openBrowser(url.href));
    o.say(opened ? `Opened your browser to log in. If nothing happened, visit:\n\n  ${url.href}\n` : `To log in, visit:\n\n  ${url.href}\n`);
    o.say('Waiting for the login to finish…');
    // openid-client takes the redirect_uri for the token request from the URL it is given.
    const response = await waitForCallback(server, redirectUri, o.timeoutMs ?? 300_000, (current) =>
      oidc.authorizationCodeGrant(config, current, { pkceCodeVerifier: verifier, expectedState: state }),
    );
    return credentialsFrom(response as TokenResponse, o.settings);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

/** Serves /callback once: exchanges the code and tells the browser how it went. */
function waitForCallback(server: Server, redirectUri: string, timeoutMs: number, exchange: (url: URL) => Promise<unknown>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new ClientError('ENTRY_OIDC_FAILED', `no login within ${Math.round(timeoutMs / 1000)} s: run enter login again`));
    }, timeoutMs);
    server.on('request', (req, res) => {
      const current = new URL(req.url ?? '/', redirectUri);
      if (current.pathname !== '/callback' || done) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      done = true;
      clearTimeout(timer);
      exchange(current).then(
        (tokens) => {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', connection: 'close' });
          res.end(PAGE('Logged in to Entry', 'You can close this tab and return to the terminal.'));
          resolve(tokens);
        },
        (err: unknown) => {
          const why = describe(err);
          res.writeHead(400, { 'content-type': 'text/html; charset=utf-8', connection: 'close' });
          res.end(PAGE('Entry login failed', escapeHtml(why)));
          reject(new ClientError('ENTRY_OIDC_FAILED', `login failed: ${why}`));
        },
      );
    });
  });
}

/** Device authorization grant (RFC 8628): for machines without a browser. */
export async function loginWithDeviceCode(o: Omit<LoginOptions, 'port'>): Promise<Credentials> {
  const config = await connectProvider(o.settings);
  if (!config.serverMetadata().device_authorization_endpoint) {
    throw new ClientError('ENTRY_OIDC_FAILED', `the identity provider ${o.settings.issuer} has no device flow: run enter login without --device`);
  }
  let device;
  try {
    device = await oidc.initiateDeviceAuthorization(config, { scope: o.settings.scopes.join(' ') });
  } catch (err) {
    throw new ClientError('ENTRY_OIDC_FAILED', `device login refused: ${describe(err)}`);
  }
  o.say(`To log in, visit:\n\n  ${device.verification_uri}\n\nand enter the code:\n\n  ${device.user_code}\n`);
  if (device.verification_uri_complete) o.say(`(or open ${device.verification_uri_complete})`);
  if (o.open && device.verification_uri_complete) await openBrowser(device.verification_uri_complete);
  o.say('Waiting for the login to finish…');
  const signal = AbortSignal.timeout(Math.min(o.timeoutMs ?? 600_000, (device.expires_in ?? 600) * 1000));
  try {
    const response = await oidc.pollDeviceAuthorizationGrant(config, device, undefined, { signal });
    return credentialsFrom(response as TokenResponse, o.settings);
  } catch (err) {
    if (signal.aborted) throw new ClientError('ENTRY_OIDC_FAILED', 'the device code expired before the login finished: run enter login --device again');
    throw new ClientError('ENTRY_OIDC_FAILED', `device login failed: ${describe(err)}`);
  }
}

/** Exchanges a refresh token for fresh credentials. */
export async function refreshCredentials(creds: Credentials): Promise<Credentials> {
  if (!creds.refreshToken || !creds.oidc) throw new ClientError('ENTRY_TOKEN_EXPIRED', 'no refresh token saved');
  const config = await connectProvider(creds.oidc);
  try {
    const response = await oidc.refreshTokenGrant(config, creds.refreshToken);
    return credentialsFrom(response as TokenResponse, creds.oidc, creds);
  } catch (err) {
    throw new ClientError('ENTRY_TOKEN_EXPIRED', `refreshing the token failed: ${describe(err)}`);
  }
}

/** Revokes a refresh token at the provider when it offers revocation; best effort. */
export async function revokeRefreshToken(creds: Credentials): Promise<boolean> {
  if (!creds.refreshToken || !creds.oidc) return false;
  try {
    const config = await connectProvider(creds.oidc);
    if (!config.serverMetadata().revocation_endpoint) return false;
    await oidc.tokenRevocation(config, creds.refreshToken, { token_type_hint: 'refresh_token' });
    return true;
  } catch {
    return false;
  }
}

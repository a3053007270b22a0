import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { type BrokerRef, credentialsFor, forgetCredentials, loadSavedConfig, storeCredentials } from '../config/store.js';
import { loginWithBrowser, loginWithDeviceCode, revokeRefreshToken } from '../oidc/login.js';
import { jwtExpiry } from '../oidc/tokens.js';
import { ClientError } from '../protocol/client-error.js';
import { brokerInfo, whoAmI } from './broker-api.js';
import { tokenFault } from './token-text.js';
import { brokerLabel, notAProfile } from './settings.js';

export interface LoginOptions {
  token?: string;
  device?: boolean;
  browser?: boolean;
  open?: boolean;
  port?: number;
  timeoutSec?: number;
}

const say = (line: string) => process.stderr.write(`${line}\n`);

/**
 * `enter login`. With --token, or a token on a non-terminal stdin, saves that token. Otherwise
 * asks the broker where to log in (GET /api/config) and runs the OIDC authorization code flow
 * with PKCE (a browser and a loopback redirect), or with --device the device flow; a broker
 * without OIDC gets the pasted-token prompt.
 */
export async function loginCommand(ref: BrokerRef, o: LoginOptions): Promise<void> {
  const pasted = o.token ?? (!o.device && !o.browser && !process.stdin.isTTY ? await readStdin() : undefined);
  if (pasted !== undefined) return await savePasted(ref, pasted);
  const info = await brokerInfo(ref);
  if (!info.oidc) {
    if (o.device || o.browser) {
      throw new ClientError('ENTRY_OIDC_FAILED', `${brokerLabel(ref)} offers no OIDC login (its --oidc-issuer is not set): get a token from your administrator and run enter login --token`);
    }
    return await savePasted(ref, await promptForToken());
  }
  const settings = info.oidc;
  say(`Logging in to ${brokerLabel(ref)} with ${settings.issuer}`);
  const common = { settings, say, open: o.open !== false, ...(o.timeoutSec ? { timeoutMs: o.timeoutSec * 1000 } : {}) };
  const creds = o.device ? await loginWithDeviceCode(common) : await loginWithBrowser({ ...common, ...(o.port ? { port: o.port } : {}) });
  storeCredentials(ref, creds, { makeCurrent: true });
  const who = subjectOf(creds.token!);
  say(`Logged in to ${brokerLabel(ref)}${who ? ` as ${who}` : ''}${creds.expiresAt ? `; the token is valid until ${new Date(creds.expiresAt * 1000).toISOString()}` : ''}${creds.refreshToken ? ' and refreshed automatically' : ''}.`);
}

/** The broker's word on a token it will not take: a wrong paste, another broker's, a revoked one. */
const REFUSED = new Set(['ENTRY_BAD_TOKEN', 'ENTRY_TOKEN_EXPIRED', 'ENTRY_TOKEN_REVOKED', 'ENTRY_NO_TOKEN']);

async function savePasted(ref: BrokerRef, token: string): Promise<void> {
  const t = token.trim();
  // Not ENTRY_NO_TOKEN: its hint is to run the login that was just run.
  if (!t) throw new ClientError('ENTRY_BAD_REQUEST', 'no token given: pass it with --token, on stdin, or paste it at the prompt');
  const bad = tokenFault(t);
  if (bad) throw new ClientError('ENTRY_BAD_REQUEST', `that token ${bad}: was more than the token pasted?`);
  const exp = jwtExpiry(t);
  if (exp !== undefined && exp * 1000 <= Date.now()) {
    throw new ClientError('ENTRY_TOKEN_EXPIRED', `that token expired at ${new Date(exp * 1000).toISOString()}: get a new one`);
  }
  // Checked with the broker before it is saved: a token it refuses would only fail the next
  // command. A broker that cannot say (down, or from before /api/whoami) does not stop the login.
  // One named by a bare word is not asked: `-b prdo` is as likely a profile mistyped as a host,
  // and the token would go over plain HTTP to whatever answers to that name (ENTRY_TOKEN never does).
  let unchecked: string | undefined;
  if (ref.bareName) unchecked = `was not checked: ${ref.url} was named by a bare word, to which no token is sent unasked`;
  else {
    try {
      await whoAmI(ref, t);
    } catch (err) {
      const e = err as ClientError;
      if (REFUSED.has(e.code)) throw new ClientError('ENTRY_BAD_REQUEST', `${brokerLabel(ref)} refused that token (${e.message}): nothing saved`);
      unchecked = `could not be checked: ${e.message}`;
    }
  }
  storeCredentials(ref, { token: t, ...(exp ? { expiresAt: exp } : {}) }, { makeCurrent: true });
  if (unchecked) say(`enter: warning: the token ${unchecked}`);
  say(`enter: token saved for ${brokerLabel(ref)}${ref.profile ? ` (${ref.url})` : ''}${notAProfile(ref)}`);
}

function subjectOf(token: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { sub?: unknown; preferred_username?: unknown; email?: unknown };
    const name = payload.preferred_username ?? payload.email ?? payload.sub;
    return typeof name === 'string' ? name : undefined;
  } catch {
    return undefined;
  }
}

async function readStdin(): Promise<string> {
  // A pipe that is slow to give the token would look like a hang without a word.
  if (process.stderr.isTTY) say('enter: reading a token from stdin (end it with Ctrl-D)');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString().trim();
}

async function promptForToken(): Promise<string> {
  // Hide what is typed: readline echoes into a sink, and the prompt is written once, beside it.
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  const rl = createInterface({ input: process.stdin, output: sink, terminal: true });
  process.stderr.write('Paste your Entry token (input hidden): ');
  let answered = false;
  const token = await new Promise<string>((resolve) => {
    rl.question('', (answer) => {
      answered = true;
      resolve(answer);
    });
    // Ctrl-C: nothing saved, and the status of an interrupted program (128 + SIGINT).
    rl.on('SIGINT', () => {
      rl.close();
      process.stderr.write('\n');
      process.exit(130);
    });
    // Ctrl-D or the end of input with no answer: no token.
    rl.on('close', () => {
      if (!answered) resolve('');
    });
  });
  rl.close();
  process.stderr.write('\n');
  return token.trim();
}

/** `enter logout`: forgets the broker's tokens, revoking the refresh token at the provider first. */
export async function logoutCommand(ref: BrokerRef): Promise<void> {
  const creds = credentialsFor(ref, loadSavedConfig());
  const revoked = await revokeRefreshToken(creds);
  const had = forgetCredentials(ref);
  say(
    had
      ? `enter: logged out of ${brokerLabel(ref)}: token forgotten${revoked ? ', refresh token revoked at the provider' : ''}`
      : `enter: not logged in to ${brokerLabel(ref)}; nothing to forget`,
  );
  if (process.env['ENTRY_TOKEN']) say('enter: note: ENTRY_TOKEN is still set in your environment');
}

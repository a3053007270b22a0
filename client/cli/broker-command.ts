import { decodeJwt } from 'jose';
import { addProfile, type Credentials, loadSavedConfig, normaliseBrokerUrl, removeProfile, sendsInClear, useProfile } from '../config/store.js';
import { jwtExpiry } from '../oidc/tokens.js';
import { ClientError } from '../protocol/client-error.js';
import { brokerInfo } from './broker-api.js';
import { relative, table } from './format.js';

/** `enter broker add NAME URL`: saves a profile; warns (only) when the broker does not answer. */
export async function brokerAdd(name: string, url: string, options: { use?: boolean } = {}): Promise<void> {
  let normalised: string;
  try {
    normalised = normaliseBrokerUrl(url);
  } catch (err) {
    throw new ClientError('ENTRY_BAD_REQUEST', (err as Error).message);
  }
  const { moved, replaced } = wrap(() => addProfile(name, normalised));
  if (options.use) useProfile(name);
  const current = loadSavedConfig().current === name;
  process.stderr.write(`enter: ${replaced ? 'updated' : 'added'} broker ${name} → ${normalised}${current ? ' (the default)' : ''}\n`);
  if (moved) process.stderr.write(`enter: the token saved for ${normalised} now belongs to ${name}\n`);
  if (sendsInClear(normalised)) process.stderr.write(`enter: warning: ${normalised} is not https: tokens sent to it can be read on the way (an address without a scheme is taken as http://)\n`);
  try {
    const info = await brokerInfo({ url: normalised, profile: name });
    process.stderr.write(`enter: ${name} answers: Entry ${info.version}${info.oidc ? `, login with ${info.oidc.issuer}` : ''}\n`);
  } catch (err) {
    process.stderr.write(`enter: warning: ${(err as Error).message} (saved anyway)\n`);
  }
}

export function brokerUse(name: string): void {
  const p = wrap(() => useProfile(name));
  process.stderr.write(`enter: using broker ${name} (${p.url})\n`);
}

export function brokerRemove(name: string): void {
  if (!removeProfile(name)) throw new ClientError('ENTRY_NO_BROKER', `no broker profile ${JSON.stringify(name)}: see enter broker ls`);
  process.stderr.write(`enter: removed broker ${name} and its token\n`);
}

interface BrokerRow {
  current: boolean;
  name: string | null;
  url: string;
  user: string | null;
  login: 'oidc' | 'token' | null;
  expiresAt: string | null;
}

function describeLogin(c: Credentials): Pick<BrokerRow, 'user' | 'login' | 'expiresAt'> {
  if (!c.token) return { user: null, login: null, expiresAt: null };
  let user: string | null = null;
  try {
    const sub = decodeJwt(c.token).sub;
    user = typeof sub === 'string' ? sub : null;
  } catch {
    // An opaque token: no user to show.
  }
  const exp = c.expiresAt ?? jwtExpiry(c.token);
  return { user, login: c.oidc ? 'oidc' : 'token', expiresAt: exp ? new Date(exp * 1000).toISOString() : null };
}

/** `enter broker ls`: profiles, then brokers used by URL alone. */
export function brokerList(json: boolean): void {
  const config = loadSavedConfig();
  const rows: BrokerRow[] = [];
  for (const [name, p] of Object.entries(config.profiles ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    rows.push({ current: config.current === name, name, url: p.url, ...describeLogin(p.token ? p : (config.brokers[p.url] ?? {})) });
  }
  for (const [url, c] of Object.entries(config.brokers).sort(([a], [b]) => a.localeCompare(b))) {
    if (rows.some((r) => r.url === url)) continue;
    rows.push({ current: config.current === url, name: null, url, ...describeLogin(c) });
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  if (rows.length === 0) {
    process.stderr.write('enter: no brokers yet: add one with `enter broker add NAME URL`\n');
    return;
  }
  const now = Date.now();
  process.stdout.write(
    table(
      ['CURRENT', 'NAME', 'URL', 'LOGIN'],
      rows.map((r) => [
        r.current ? '*' : '',
        r.name ?? '-',
        r.url,
        !r.login
          ? 'not logged in'
          : `${r.user ?? 'token'}${r.login === 'oidc' ? ' (oidc)' : ''}${r.expiresAt ? `, ${Date.parse(r.expiresAt) > now ? 'expires' : 'expired'} ${relative(Date.parse(r.expiresAt), now)}` : ''}`,
      ]),
    ),
  );
}

function wrap<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw err instanceof ClientError ? err : new ClientError('ENTRY_BAD_REQUEST', (err as Error).message);
  }
}

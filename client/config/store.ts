import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { makePrivateDir } from './private-dir.js';

/** What `enter login` keeps for one broker. */
export interface Credentials {
  token?: string;
  /** OIDC refresh token; present when the token came from a provider's login. */
  refreshToken?: string;
  /** When the token expires, epoch seconds (its `exp`). */
  expiresAt?: number;
  /** The provider that issued the token, for refresh and logout. */
  oidc?: { issuer: string; clientId: string };
}

/** A named broker (`enter broker add NAME URL`) with its own credentials. */
export interface Profile extends Credentials {
  url: string;
}

/**
 * The CLI's saved state, in `$ENTRY_CONFIG_DIR` or `$XDG_CONFIG_HOME/entry` or
 * `~/.config/entry`, file mode 0600:
 *   current   the default broker: a profile name, or a broker URL
 *   brokers   credentials by broker URL, for brokers used without a profile
 *   profiles  named brokers, each with its own credentials (absent until the first `broker add`)
 * Files written before profiles existed (`current` + `brokers{url:{token}}`) read unchanged.
 */
export interface SavedConfig {
  current?: string;
  brokers: Record<string, Credentials>;
  profiles?: Record<string, Profile>;
}

/** A broker as a command sees it: its URL, and the profile it came from, if any. */
export interface BrokerRef {
  url: string;
  profile?: string;
  /** Given as a bare name that no profile has, and taken as a host name: said where it may be a typo. */
  bareName?: string;
  /** The profile such a bare name is likely a slip for (`-b prdo` for `prod`). */
  closeProfile?: string;
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['ENTRY_CONFIG_DIR']) return env['ENTRY_CONFIG_DIR'];
  const base = env['XDG_CONFIG_HOME'] || join(homedir(), '.config');
  return join(base, 'entry');
}

export function configFile(env?: NodeJS.ProcessEnv): string {
  return join(configDir(env), 'config.json');
}

export function loadSavedConfig(env?: NodeJS.ProcessEnv): SavedConfig {
  try {
    const parsed = JSON.parse(readFileSync(configFile(env), 'utf8')) as Partial<SavedConfig>;
    const fault = configFault(parsed);
    if (fault) throw new Error(`${fault} (fix or remove the file; \`enter broker add\` and \`enter login\` write it)`);
    const profiles = parsed.profiles && Object.keys(parsed.profiles).length > 0 ? { profiles: parsed.profiles } : {};
    return { ...(parsed.current ? { current: parsed.current } : {}), brokers: parsed.brokers ?? {}, ...profiles };
  } catch (err) {
    // ENOTDIR: a file where a directory of the path should be; saving says so, naming it.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { brokers: {} };
    throw new Error(`cannot read ${configFile(env)}: ${(err as Error).message}`);
  }
}

/** What in a config file (hand-edited, say) is not what the CLI writes, if anything. */
function configFault(c: unknown): string | undefined {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(c)) return 'it is not a JSON object';
  if (c['current'] !== undefined && typeof c['current'] !== 'string') return '"current" is not a string';
  for (const key of ['brokers', 'profiles'] as const) {
    const group = c[key];
    if (group === undefined) continue;
    if (!isObject(group)) return `"${key}" is not an object`;
    for (const [name, entry] of Object.entries(group)) {
      if (!isObject(entry)) return `${key}.${name} is not an object`;
      if (key === 'profiles' && typeof entry['url'] !== 'string') return `profiles.${name} has no "url"`;
      if (entry['token'] !== undefined && typeof entry['token'] !== 'string') return `${key}.${name}.token is not a string`;
    }
  }
  return undefined;
}

export function saveConfig(config: SavedConfig, env?: NodeJS.ProcessEnv): void {
  makePrivateDir(configDir(env), 'the config directory');
  const file = configFile(env);
  const tmp = `${file}.${process.pid}.tmp`;
  const out: SavedConfig = { ...config };
  if (out.profiles && Object.keys(out.profiles).length === 0) delete out.profiles;
  // Written with 0600 from the first byte, then renamed: the token is never world-readable.
  writeFileSync(tmp, `${JSON.stringify(out, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** Normalises a broker address: `host:port` → `http://host:port`, no trailing slash. */
export function normaliseBrokerUrl(url: string): string {
  let u = url.trim();
  if (!/^[a-z]+:\/\//i.test(u)) u = `http://${u}`;
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    // The URL parser says only "Invalid URL", not which one nor what is wrong with it.
    throw new Error(`broker address ${JSON.stringify(url)} is not a URL: give one such as https://entry.example.com, or HOST:PORT`);
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(parsed.protocol)) {
    throw new Error(`broker URL must be http(s):// or ws(s)://, got ${url}`);
  }
  // The API paths are appended to the address: a query or fragment would swallow them
  // (`…/?x=1/api/containers`), and fetch refuses a URL with a user name in it.
  if (parsed.search || parsed.hash || parsed.username || parsed.password) {
    throw new Error(`broker address ${JSON.stringify(url)} has a ${parsed.search ? 'query' : parsed.hash ? 'fragment' : 'user name'}: give the address alone, such as https://entry.example.com`);
  }
  return parsed.toString().replace(/\/$/, '');
}

/** A broker reached without TLS anywhere but this machine's loopback. */
export function sendsInClear(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  if (protocol === 'https:' || protocol === 'wss:') return false;
  return !(hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname));
}

/** Profile names: a letter, then letters, digits, `_`, `.`, `-` (never a URL, never host:port). */
export const PROFILE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/**
 * Resolves `NAME|URL` (a flag, ENTRY_BROKER or the saved current broker) to a broker. A profile
 * name wins; a URL that a profile points at resolves to that profile, so its credentials are used.
 */
export function resolveBrokerRef(ref: string, config: SavedConfig): BrokerRef {
  const profiles = config.profiles ?? {};
  const named = Object.hasOwn(profiles, ref) ? profiles[ref] : undefined;
  if (named) return { url: named.url, profile: ref };
  const url = normaliseBrokerUrl(ref);
  const match = Object.entries(profiles).find(([, p]) => p.url === url);
  if (match) return { url, profile: match[0] };
  // `-b prdo`: no scheme, port or dot, so a profile's name mistyped as likely as a host's.
  return /^[A-Za-z][A-Za-z0-9_-]*$/.test(ref) && ref !== 'localhost' ? { url, bareName: ref } : { url };
}

export function credentialsFor(ref: BrokerRef, config: SavedConfig): Credentials {
  if (ref.profile) {
    const p = config.profiles?.[ref.profile];
    // A profile made for a broker used before keeps working with the older, URL-keyed token.
    if (p && !p.token && config.brokers[ref.url]?.token) return config.brokers[ref.url]!;
    return p ?? {};
  }
  return config.brokers[ref.url] ?? {};
}

/** Replaces the credentials of a broker (its profile's, or the URL-keyed ones). */
export function storeCredentials(ref: BrokerRef, creds: Credentials, options: { makeCurrent?: boolean; env?: NodeJS.ProcessEnv } = {}): void {
  const config = loadSavedConfig(options.env);
  const clean: Credentials = {};
  if (creds.token) clean.token = creds.token;
  if (creds.refreshToken) clean.refreshToken = creds.refreshToken;
  if (creds.expiresAt) clean.expiresAt = creds.expiresAt;
  if (creds.oidc) clean.oidc = creds.oidc;
  if (ref.profile && config.profiles?.[ref.profile]) {
    config.profiles[ref.profile] = { url: config.profiles[ref.profile]!.url, ...clean };
    delete config.brokers[ref.url];
  } else {
    config.brokers[ref.url] = clean;
  }
  const id = ref.profile ?? ref.url;
  if (options.makeCurrent || !config.current) config.current = id;
  saveConfig(config, options.env);
}

/** Forgets a broker's credentials; true when there were any. */
export function forgetCredentials(ref: BrokerRef, env?: NodeJS.ProcessEnv): boolean {
  const config = loadSavedConfig(env);
  let had = false;
  const p = ref.profile ? config.profiles?.[ref.profile] : undefined;
  if (p) {
    had = Boolean(p.token || p.refreshToken);
    config.profiles![ref.profile!] = { url: p.url };
  }
  if (config.brokers[ref.url]) {
    had = had || Boolean(config.brokers[ref.url]!.token || config.brokers[ref.url]!.refreshToken);
    delete config.brokers[ref.url];
  }
  saveConfig(config, env);
  return had;
}

/** Old entry point, kept for dev mode and scripts: saves a plain token for a broker URL. */
export function saveToken(brokerUrl: string, token: string, options: { makeCurrent?: boolean; env?: NodeJS.ProcessEnv } = {}): void {
  const url = normaliseBrokerUrl(brokerUrl);
  const config = loadSavedConfig(options.env);
  config.brokers[url] = { ...config.brokers[url], token };
  if (options.makeCurrent || !config.current) config.current = url;
  saveConfig(config, options.env);
}

/** Adds or re-points a profile; a URL-keyed token for the same broker moves into it. */
export function addProfile(name: string, url: string, env?: NodeJS.ProcessEnv): { moved: boolean; replaced: boolean } {
  if (!PROFILE_NAME.test(name)) {
    throw new Error(`profile name ${JSON.stringify(name)}: use a letter, then letters, digits, '_', '.', '-'`);
  }
  const config = loadSavedConfig(env);
  const normalised = normaliseBrokerUrl(url);
  const profiles = (config.profiles ??= {});
  const existing = profiles[name];
  const replaced = Boolean(existing);
  const legacy = config.brokers[normalised];
  const keep = existing && existing.url === normalised ? existing : undefined;
  profiles[name] = { ...(keep ?? legacy ?? {}), url: normalised };
  const moved = !keep && Boolean(legacy?.token);
  if (legacy) delete config.brokers[normalised];
  // A fresh setup, or a current broker that was this URL, makes the profile the default.
  if (!config.current || config.current === normalised) config.current = name;
  saveConfig(config, env);
  return { moved, replaced };
}

export function removeProfile(name: string, env?: NodeJS.ProcessEnv): boolean {
  const config = loadSavedConfig(env);
  if (!config.profiles?.[name]) return false;
  delete config.profiles[name];
  if (config.current === name) delete config.current;
  saveConfig(config, env);
  return true;
}

export function useProfile(name: string, env?: NodeJS.ProcessEnv): Profile {
  const config = loadSavedConfig(env);
  const p = config.profiles?.[name];
  if (!p) {
    const known = Object.keys(config.profiles ?? {});
    throw new Error(`no broker profile ${JSON.stringify(name)}${known.length ? ` (known: ${known.join(', ')})` : ''}: add it with \`enter broker add ${name} URL\``);
  }
  config.current = name;
  saveConfig(config, env);
  return p;
}

import { isIP, isIPv6 } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withoutCredentials } from '../mask.js';
import { urlList } from '../url-list.js';
import { ConfigError } from './config-error.js';
import { type DockerClientFiles, type ListenerTls, parseDockerClientFiles, parseHostSpec, parseListenerTls, parseMetricsListen, parsePeerTls, type PeerTls, parseTrustedProxies } from './fleet-settings.js';
import { type SettingName, defaultBoolean, defaultList, defaultNumber, defaultString } from './settings.js';

/** Typed, validated broker configuration. Built only by `parseConfig`. */
export interface BrokerConfig {
  listen: { host: string; port: number };
  auth: AuthConfig;
  /** Dev mode: a generated signing key and a minted token for the local user (loopback only). */
  dev: boolean;
  /** Where dev mode writes its token (--dev-token-file). */
  devTokenFile: string;
  docker: {
    /** The engines to reach, each `{name, url}`; the first is the default for unnamed tools. */
    hosts: Array<{ name: string; url: string }>;
    /** How a session's leftover processes are found: auto, host (/proc) or exec (sh in the container). */
    reapMode: 'auto' | 'host' | 'exec';
    /** TLS material for tcp:// engines and keys for ssh:// engines (see fleet-settings.ts). */
    client: DockerClientFiles;
  };
  /** The Kubernetes backend (--kubeconfig); null: off. */
  kubernetes: KubernetesSettings | null;
  /** TLS on the listener (--tls-cert, --tls-key, --tls-client-ca); null: plain HTTP. */
  tls: ListenerTls | null;
  /** --peer-ca, --peer-cert, --peer-key (by default the listener's): TLS to the other brokers. */
  peerTls: PeerTls;
  /** --trusted-proxy: CIDRs whose X-Forwarded-For is believed. */
  trustedProxies: string[];
  /** --advertise-url: how the other brokers reach this one; undefined: derived from the listener. */
  advertiseUrl: string | undefined;
  /** --state-dir: where the session ledger is kept; undefined: no ledger. */
  stateDir: string | undefined;
  /** --metrics-listen: where Prometheus metrics are served; null: no metrics. */
  metricsListen: { host: string; port: number } | null;
  limits: {
    pingIntervalMs: number;
    /** Nothing acknowledged by the client's kernel for this long: the peer is gone. */
    peerTimeoutMs: number;
    /** Output queued and not draining for this long ends the session; 0: never. */
    stallTimeoutMs: number;
    /** Kernel keepalive delay on client sockets; 0: off. */
    tcpKeepAliveMs: number;
    /** How long a broken resumable session is kept for its client; 0: resume off. */
    resumeGraceMs: number;
    maxFrameBytes: number;
    startTimeoutMs: number;
    openTimeoutMs: number;
    idleTimeoutMs: number;
    maxSessionMs: number;
    maxSessions: number;
    handshakeTimeoutMs: number;
    /** --body-timeout: a request body must arrive whole within this. */
    bodyTimeoutMs: number;
    killGraceMs: number;
    drainTimeoutMs: number;
    sessionTtlMs: number;
    maxUserSessions: number;
    authFailureLimit: number;
    authFailureWindowMs: number;
  };
  audit: {
    maxEvents: number;
    alertRules: RegExp[];
    /** Recordings directory; undefined: sessions are not recorded. */
    recordingsDir: string | undefined;
    recordInput: boolean;
    recordingMaxBytes: number;
    retentionDays: number;
    /** Tell a watched user that an admin is watching. */
    watchBanner: boolean;
  };
  /** Shared state: Redis when a URL is given, else in memory (one broker). */
  redis: {
    url: string | undefined;
    sentinels: string[];
    sentinelName: string | undefined;
    cluster: boolean;
  };
  /** Allowed Origin values for browser upgrades; empty: same-origin only. */
  allowedOrigins: string[];
  /** Where clients log in, told by GET /api/config; null: no OIDC login offered. */
  oidc: OidcClientConfig | null;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** Bytes of log lines that may wait for stderr before lines are dropped. */
  logBacklogBytes: number;
}

export interface AuthConfig {
  publicKeyFile: string | undefined;
  jwksUrl: string | undefined;
  secretFile: string | undefined;
  issuer: string | undefined;
  audience: string | undefined;
  clockToleranceSec: number;
  claims: { user: string; apps: string; roles: string };
  adminRole: string;
  denyApps: string[];
}

export { ConfigError } from './config-error.js';

/** Raw values as they come from flags, ENTRY_* variables or a config file. */
export type RawSettings = Record<string, unknown>;

/**
 * The longest delay a Node timer takes (2^31 - 1 ms, about 24.8 days): a longer one fires at
 * once, so a session given a longer --max-session would end as it starts.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

function str(raw: RawSettings, key: string): string | undefined {
  const v = raw[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') throw new ConfigError(`--${key}`, 'must be a string');
  return String(v);
}

/** A whole number in [min, max]; absent: its default from the settings table. */
function int(raw: RawSettings, key: SettingName, min: number, max: number): number {
  const v = raw[key];
  if (v === undefined || v === null || v === '') return defaultNumber(key);
  // Decimal digits only: Number() would take `0x10` for 16, `1e3` for 1000 and `true` for 1.
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    // A flag that is not a number reaches here as NaN, which JSON shows as null.
    const got = typeof v === 'number' && Number.isNaN(v) ? 'something that is not a number' : JSON.stringify(v);
    throw new ConfigError(`--${key}`, `must be a whole number from ${min} to ${max}, got ${got}`);
  }
  return n;
}

/**
 * A list setting: repeated flags or a JSON array, and in one string (a variable) its items
 * comma-separated; `lines`: items whole and one string split into lines (regular expressions,
 * which hold commas: `.{0,3}`).
 */
function list(raw: RawSettings, key: string, fallback: string[], split: 'commas' | 'lines' = 'commas', saysNothing = 'lists nothing'): string[] {
  const v = raw[key];
  // Empty as unset, as for every other setting: `ENTRY_DENY_APPS=` (a Compose file passing an
  // unset variable on) must not turn off the default deny.
  if (v === undefined || v === null || v === '') return fallback;
  const items = split === 'lines' ? (Array.isArray(v) ? v.map(String) : String(v).split('\n')) : (Array.isArray(v) ? v : [v]).flatMap((x) => String(x).split(','));
  const kept = items.map((s) => s.trim()).filter(Boolean);
  // `ENTRY_DENY_APPS=,` is no way to say "deny nothing": it is a mistake, said as one.
  if (kept.length === 0) throw new ConfigError(`--${key}`, `${JSON.stringify(v)} ${saysNothing}: leave it unset for the default`);
  return kept;
}

export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  if (!m) throw new ConfigError('--listen', `want HOST:PORT, got ${JSON.stringify(value)}`);
  const host = m[1] ?? (m[2] || '0.0.0.0');
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError('--listen', `port ${port} out of range`);
  return { host, port };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;

export interface OidcClientConfig {
  issuer: string;
  clientId: string;
  scopes: string[];
}

/**
 * --oidc-issuer, --oidc-client-id, --oidc-scopes: advertised to clients for `enter login`.
 * They do not make the broker trust the issuer: tokens are still verified with the configured
 * key source (for an OIDC provider, --jwks-url set to its jwks_uri).
 */
function parseOidc(raw: RawSettings): OidcClientConfig | null {
  const issuer = str(raw, 'oidc-issuer');
  const clientId = str(raw, 'oidc-client-id');
  if (!issuer && !clientId) return null;
  if (!issuer) throw new ConfigError('--oidc-issuer', 'required with --oidc-client-id');
  if (!clientId) throw new ConfigError('--oidc-client-id', 'required with --oidc-issuer');
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new ConfigError('--oidc-issuer', `not a URL: ${issuer}`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname.replace(/^\[|\]$/g, '')))) {
    throw new ConfigError('--oidc-issuer', 'must be https (plain http only on loopback)');
  }
  const scopes = list(raw, 'oidc-scopes', [defaultString('oidc-scopes')]).flatMap((s) => s.split(/\s+/)).filter(Boolean);
  if (!scopes.includes('openid')) throw new ConfigError('--oidc-scopes', 'must include openid');
  return { issuer, clientId, scopes };
}

/**
 * The Docker engines. Without --docker-host: the local socket, unless Kubernetes is configured
 * (a broker serving pods does not also look for a Docker socket it was not told about).
 * `none` turns Docker off.
 */
function parseDockerHosts(raw: RawSettings, kubernetes: boolean): BrokerConfig['docker']['hosts'] {
  const specs = list(raw, 'docker-host', [], 'commas', 'names no engine (none turns Docker off)');
  if (specs.length === 1 && specs[0] === 'none') {
    if (!kubernetes) throw new ConfigError('--docker-host', 'none leaves the broker nothing to enter: give --kubeconfig too');
    return [];
  }
  const hosts = (specs.length > 0 ? specs : kubernetes ? [] : defaultList('docker-host')).map(parseHostSpec);
  const names = new Set<string>();
  for (const h of hosts) {
    if (names.has(h.name)) throw new ConfigError('--docker-host', `two hosts are called ${h.name}: name them NAME=URL`);
    names.add(h.name);
  }
  return hosts;
}

function bool(raw: RawSettings, key: SettingName): boolean {
  const v = raw[key];
  if (v === undefined || v === null || v === '') return defaultBoolean(key);
  if (v === true || v === 'true' || v === '1') return true;
  if (v === false || v === 'false' || v === '0') return false;
  throw new ConfigError(`--${key}`, `must be true or false, got ${JSON.stringify(v)}`);
}

function parseAudit(raw: RawSettings): BrokerConfig['audit'] {
  const alertRules = list(raw, 'alert-rule', [], 'lines').map((r) => {
    try {
      return new RegExp(r);
    } catch (err) {
      throw new ConfigError('--alert-rule', `not a regular expression: ${r} (${(err as Error).message})`);
    }
  });
  return {
    maxEvents: int(raw, 'audit-max-events', 100, 100_000_000),
    alertRules,
    recordingsDir: optionalDir(raw, 'recordings-dir'),
    recordInput: bool(raw, 'record-input'),
    recordingMaxBytes: int(raw, 'recording-max-bytes', 1024, 1024 ** 4),
    retentionDays: int(raw, 'recording-retention-days', 0, 36_500),
    watchBanner: bool(raw, 'watch-banner'),
  };
}

/** A directory setting that `none` turns off. */
function optionalDir(raw: RawSettings, key: 'recordings-dir' | 'state-dir'): string | undefined {
  const dir = str(raw, key) ?? defaultString(key);
  return dir === 'none' ? undefined : dir;
}

function parseAdvertiseUrl(raw: RawSettings): string | undefined {
  const value = str(raw, 'advertise-url');
  if (value === undefined) return undefined;
  let url: URL;
  try {
    // An IPv6 address put in bare, as `http://$(POD_IP):8022` gives it in an IPv6 cluster: the
    // last colon is the port's, the address goes in brackets.
    const bare = /^(https?:\/\/)([0-9A-Fa-f:]*:[0-9A-Fa-f:.]*):(\d{1,5})$/.exec(value);
    url = new URL(bare && isIPv6(bare[2]!) ? `${bare[1]}[${bare[2]}]:${bare[3]}` : value);
  } catch {
    throw new ConfigError('--advertise-url', `not a URL: ${value}`);
  }
  if (!['http:', 'https:'].includes(url.protocol) || url.pathname !== '/' || url.search) throw new ConfigError('--advertise-url', 'must be http(s)://HOST:PORT');
  return url.origin;
}

function parseRedis(raw: RawSettings): BrokerConfig['redis'] {
  const url = str(raw, 'redis-url');
  const sentinels = list(raw, 'redis-sentinels', []);
  const cluster = bool(raw, 'redis-cluster');
  if (url) {
    const urls = urlList(url);
    if (urls.length > 1 && !cluster) throw new ConfigError('--redis-url', 'lists several URLs: give one, or seed nodes with --redis-cluster');
    for (const u of urls) {
      let parsed: URL;
      try {
        parsed = new URL(u.trim());
      } catch {
        // Said without its credentials: start-up failures land in journald.
        throw new ConfigError('--redis-url', `not a URL: ${withoutCredentials(u.trim())} (a password with / or @ in it is written %2F, %40)`);
      }
      if (!['redis:', 'rediss:'].includes(parsed.protocol)) throw new ConfigError('--redis-url', 'must be redis:// or rediss://');
      const db = parsed.pathname.replace(/^\//, '');
      if (db !== '' && !/^\d{1,5}$/.test(db)) throw new ConfigError('--redis-url', `the path is a database number, got /${db}`);
      // Redis Cluster has database 0 only.
      if (cluster && db !== '' && Number(db) !== 0) throw new ConfigError('--redis-url', 'Redis Cluster has database 0 only');
    }
    if (cluster && sentinels.length > 0) throw new ConfigError('--redis-sentinels', 'goes with one Redis, not with --redis-cluster');
  } else if (sentinels.length > 0 || cluster) {
    throw new ConfigError('--redis-url', 'required with --redis-sentinels or --redis-cluster');
  }
  for (const s of sentinels) if (!/^\[?[^\]]+\]?:\d+$/.test(s)) throw new ConfigError('--redis-sentinels', `want host:port, got ${s}`);
  const sentinelName = str(raw, 'redis-sentinel-name');
  if (sentinelName !== undefined && sentinels.length === 0) throw new ConfigError('--redis-sentinel-name', 'needs --redis-sentinels');
  return { url, sentinels, sentinelName, cluster };
}

/** Origins as a browser sends them (`https://console.example:8443`): anything else would never match. */
function parseOrigins(origins: string[]): string[] {
  for (const o of origins) {
    let origin: string | undefined;
    try {
      origin = new URL(o).origin;
    } catch {
      origin = undefined;
    }
    if (origin !== o) {
      throw new ConfigError('--allowed-origin', `${JSON.stringify(o)} is not an origin as browsers send it (scheme://host[:port], no path, no wildcard)${origin && origin !== 'null' ? `: did you mean ${origin}?` : ''}`);
    }
  }
  return origins;
}

export function parseConfig(raw: RawSettings): BrokerConfig {
  const listen = parseListen(str(raw, 'listen') ?? defaultString('listen'));
  const kubernetes = parseKubernetes(raw);
  const dev = bool(raw, 'dev');
  const auth: AuthConfig = {
    publicKeyFile: str(raw, 'jwt-public-key'),
    jwksUrl: str(raw, 'jwks-url'),
    secretFile: str(raw, 'jwt-secret-file'),
    issuer: str(raw, 'issuer'),
    audience: str(raw, 'audience'),
    clockToleranceSec: int(raw, 'clock-tolerance', 0, 600),
    claims: {
      user: str(raw, 'user-claim') ?? defaultString('user-claim'),
      apps: str(raw, 'apps-claim') ?? defaultString('apps-claim'),
      roles: str(raw, 'roles-claim') ?? defaultString('roles-claim'),
    },
    adminRole: str(raw, 'admin-role') ?? defaultString('admin-role'),
    denyApps: list(raw, 'deny-apps', defaultList('deny-apps')),
  };
  const sources = [auth.publicKeyFile, auth.jwksUrl, auth.secretFile].filter(Boolean).length;
  if (dev) {
    if (!isLoopback(listen.host)) {
      throw new ConfigError('--dev', `dev mode only listens on loopback, not ${listen.host}`);
    }
    if (sources > 0) throw new ConfigError('--dev', 'dev mode makes its own key; drop --jwt-public-key/--jwks-url/--jwt-secret-file');
    // Shared state would carry dev tickets (the local user, every app) to production brokers.
    if (str(raw, 'redis-url') || list(raw, 'redis-sentinels', []).length > 0 || raw['redis-cluster'] === true || raw['redis-cluster'] === 'true') {
      throw new ConfigError('--dev', 'dev mode keeps its state to itself; drop --redis-url (and --redis-sentinels/--redis-cluster)');
    }
  } else if (sources === 0) {
    throw new ConfigError('--jwt-public-key', 'one of --jwt-public-key, --jwks-url or --jwt-secret-file is required (or --dev on loopback)');
  } else if (sources > 1) {
    throw new ConfigError('--jwt-public-key', 'give only one of --jwt-public-key, --jwks-url, --jwt-secret-file');
  }
  if (auth.jwksUrl) {
    let url: URL;
    try {
      url = new URL(auth.jwksUrl);
    } catch {
      throw new ConfigError('--jwks-url', `not a URL: ${auth.jwksUrl}`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname.replace(/^\[|\]$/g, '')))) {
      throw new ConfigError('--jwks-url', 'must be https (plain http only on loopback)');
    }
  }
  const logLevel = (str(raw, 'log-level') ?? defaultString('log-level')) as BrokerConfig['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('--log-level', `one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  }
  const reapMode = (str(raw, 'reap-mode') ?? defaultString('reap-mode')) as BrokerConfig['docker']['reapMode'];
  if (!['auto', 'host', 'exec'].includes(reapMode)) throw new ConfigError('--reap-mode', 'one of auto, host, exec');
  const tls = parseListenerTls(raw);
  return {
    listen,
    auth,
    dev,
    devTokenFile: str(raw, 'dev-token-file') ?? (dev ? defaultDevTokenFile() : ''),
    docker: { hosts: parseDockerHosts(raw, kubernetes !== null), reapMode, client: parseDockerClientFiles(raw) },
    kubernetes,
    tls,
    peerTls: parsePeerTls(raw, tls),
    trustedProxies: parseTrustedProxies(raw),
    advertiseUrl: parseAdvertiseUrl(raw),
    stateDir: optionalDir(raw, 'state-dir'),
    metricsListen: parseMetricsListen(raw, parseListen),
    limits: {
      pingIntervalMs: int(raw, 'ping-interval', 10, 3_600_000),
      peerTimeoutMs: int(raw, 'peer-timeout', 100, 3_600_000),
      stallTimeoutMs: int(raw, 'stall-timeout', 0, MAX_TIMER_MS),
      tcpKeepAliveMs: int(raw, 'tcp-keepalive', 0, 3_600_000),
      resumeGraceMs: int(raw, 'resume-grace', 0, 86_400_000),
      maxFrameBytes: int(raw, 'max-frame', 1024, 64 * 1024 * 1024),
      startTimeoutMs: int(raw, 'start-timeout', 100, 600_000),
      openTimeoutMs: int(raw, 'open-timeout', 100, 600_000),
      idleTimeoutMs: int(raw, 'idle-timeout', 0, MAX_TIMER_MS),
      maxSessionMs: int(raw, 'max-session', 0, MAX_TIMER_MS),
      maxSessions: int(raw, 'max-sessions', 1, 1_000_000),
      handshakeTimeoutMs: int(raw, 'handshake-timeout', 100, 600_000),
      bodyTimeoutMs: int(raw, 'body-timeout', 100, 600_000),
      ...drainLimits(raw),
      sessionTtlMs: int(raw, 'session-ttl', 300, 3_600_000),
      maxUserSessions: int(raw, 'max-user-sessions', 0, 1_000_000),
      authFailureLimit: int(raw, 'auth-failure-limit', 1, 1_000_000),
      authFailureWindowMs: int(raw, 'auth-failure-window', 1_000, 86_400_000),
    },
    redis: parseRedis(raw),
    audit: parseAudit(raw),
    allowedOrigins: parseOrigins(list(raw, 'allowed-origin', [])),
    oidc: parseOidc(raw),
    logLevel,
    logBacklogBytes: int(raw, 'log-backlog', 64 * 1024, 1024 ** 3),
  };
}

/**
 * --kill-grace within --drain-timeout: a drain ends each session's processes (up to the grace)
 * before it tells the client why; one that times out first exits with its clients told nothing.
 */
function drainLimits(raw: RawSettings): { killGraceMs: number; drainTimeoutMs: number } {
  const killGraceMs = int(raw, 'kill-grace', 0, 600_000);
  const drainTimeoutMs = int(raw, 'drain-timeout', 0, 3_600_000);
  if (drainTimeoutMs > 0 && killGraceMs >= drainTimeoutMs) {
    throw new ConfigError('--kill-grace', `${killGraceMs} ms must be shorter than --drain-timeout (${drainTimeoutMs} ms): a drain would end before the sessions it ends, their clients told nothing`);
  }
  return { killGraceMs, drainTimeoutMs };
}

export interface KubernetesSettings {
  /** A kubeconfig file, or `in-cluster` for the pod's own service account. */
  kubeconfig: string;
  /** The kubeconfig context to use; null: its current context. */
  context: string | null;
  /** Namespaces served; empty: every namespace the broker may list. */
  namespaces: string[];
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function parseKubernetes(raw: RawSettings): KubernetesSettings | null {
  const kubeconfig = str(raw, 'kubeconfig');
  const context = str(raw, 'kube-context') ?? null;
  const namespaces = list(raw, 'kube-namespace', []);
  if (!kubeconfig) {
    if (context) throw new ConfigError('--kube-context', 'needs --kubeconfig');
    if (namespaces.length > 0) throw new ConfigError('--kube-namespace', 'needs --kubeconfig');
    return null;
  }
  for (const ns of namespaces) if (!NAMESPACE.test(ns)) throw new ConfigError('--kube-namespace', `not a namespace name: ${JSON.stringify(ns)}`);
  return { kubeconfig, context, namespaces };
}

/** Per user, where only that user can read it: the runtime directory, else the temp directory. */
function defaultDevTokenFile(): string {
  const runtime = process.env['XDG_RUNTIME_DIR'];
  // The uid, not userInfo(): a container's user may have no passwd entry.
  return runtime ? join(runtime, 'entry-dev-token') : join(tmpdir(), `entry-dev-token-${process.getuid?.() ?? 0}`);
}

import {
  DEFAULT_AUDIT_MAX_EVENTS,
  DEFAULT_AUTH_FAILURE_LIMIT,
  DEFAULT_AUTH_FAILURE_WINDOW_MS,
  DEFAULT_BODY_TIMEOUT_MS,
  DEFAULT_DRAIN_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_KILL_GRACE_MS,
  DEFAULT_LOG_BACKLOG_BYTES,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_SESSION_MS,
  DEFAULT_MAX_SESSIONS,
  DEFAULT_MAX_USER_SESSIONS,
  DEFAULT_PEER_TIMEOUT_MS,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_RECORDING_MAX_BYTES,
  DEFAULT_RECORDING_RETENTION_DAYS,
  DEFAULT_RESUME_GRACE_MS,
  DEFAULT_SESSION_TTL_MS,
  DEFAULT_OPEN_TIMEOUT_MS,
  DEFAULT_START_TIMEOUT_MS,
  DEFAULT_STALL_TIMEOUT_MS,
  DEFAULT_TCP_KEEPALIVE_MS,
} from './limits.js';

/**
 * Every broker setting, once: the flags (flags.ts), their `[default: …]` in --help, the README's
 * options table (print-settings.ts) and the defaults parseConfig fills in all come from here, and
 * test/unit/readme-settings.test.ts checks that they agree.
 */
export interface Setting {
  type: 'string' | 'number' | 'boolean';
  /** Repeatable; a single value may also list several, comma-separated. */
  array?: boolean;
  /** What follows the flag in the README and in --help: `--listen HOST:PORT`. */
  arg?: string;
  /** What parseConfig fills in when the setting is not given. */
  default?: string | number | boolean | readonly string[];
  /** The default as a reader sees it (markdown), where the value alone does not say it. */
  shown?: string;
  /** Markdown, as in the README. */
  description: string;
}

export const SETTINGS = {
  listen: { type: 'string', arg: 'HOST:PORT', default: '127.0.0.1:8022', description: 'where to listen; `GET /healthz`, `GET /readyz` answer there too' },
  'jwt-public-key': { type: 'string', arg: 'FILE', description: 'PEM public key: RSA (RS*/PS*), EC (ES256/384/512 by curve) or Ed25519 (EdDSA)' },
  'jwks-url': { type: 'string', arg: 'URL', description: 'JWKS of an OIDC issuer (https)' },
  'jwt-secret-file': { type: 'string', arg: 'FILE', description: 'HMAC secret, at least 32 bytes (HS256/384/512)' },
  issuer: { type: 'string', arg: 'ISS', description: 'required `iss` of tokens' },
  audience: { type: 'string', arg: 'AUD', description: 'required `aud` of tokens' },
  'clock-tolerance': { type: 'number', arg: 'SEC', default: 30, description: 'skew allowed on `exp`/`nbf`, and on an `iat` in the future' },
  'user-claim': { type: 'string', arg: 'PATH', default: 'sub', description: 'claim naming the user' },
  'apps-claim': { type: 'string', arg: 'PATH', default: 'apps', description: 'claim listing the apps the user may enter (`*`, globs like `shop-*`)' },
  'roles-claim': { type: 'string', arg: 'PATH', default: 'roles', description: 'claim listing roles (`realm_access.roles` for Keycloak, `groups` for Okta)' },
  'admin-role': { type: 'string', arg: 'ROLE', default: 'entry-admin', description: 'role that may enter every app' },
  'deny-apps': { type: 'string', array: true, arg: 'APP…', default: ['entry'], description: "apps nobody may enter, admins included (the broker's own)" },
  'docker-host': {
    type: 'string',
    array: true,
    arg: '[NAME=]URL…',
    // ENTRY_DOCKER_HOSTS and DOCKER_HOST are read by flags.ts; this is what is left when neither is set.
    default: ['unix:///var/run/docker.sock'],
    shown: '`ENTRY_DOCKER_HOSTS` (comma-separated), else `DOCKER_HOST`, else `/var/run/docker.sock` (none when `--kubeconfig` is set)',
    description: 'the Docker engines: `unix:///path`, `tcp://host:port`, `ssh://user@host[:port]` (see [Docker hosts](#docker-hosts)); `none` turns Docker off',
  },
  kubeconfig: { type: 'string', arg: 'FILE|in-cluster', shown: 'off', description: "serve Kubernetes pods: this kubeconfig, or the pod's own service account (see [Kubernetes pods](#kubernetes-pods))" },
  'kube-context': { type: 'string', arg: 'NAME', shown: "the kubeconfig's current context", description: 'the context (cluster and credentials) to use' },
  'kube-namespace': { type: 'string', array: true, arg: 'NS…', shown: 'every namespace the broker may list', description: 'namespaces to serve (repeatable)' },
  'docker-tls-ca': {
    type: 'string',
    arg: 'FILE',
    shown: "`DOCKER_CERT_PATH`'s `ca.pem`",
    description: "CA that signed the `tcp://` engines' certificates: TLS for every `tcp://` engine (any `--docker-tls-*` turns TLS on; the engine's certificate is always verified)",
  },
  'docker-tls-cert': { type: 'string', arg: 'FILE', shown: "`DOCKER_CERT_PATH`'s `cert.pem`", description: 'client certificate for `tcp://` engines' },
  'docker-tls-key': { type: 'string', arg: 'FILE', shown: "`DOCKER_CERT_PATH`'s `key.pem`", description: 'key of `--docker-tls-cert`' },
  'docker-cert-path': { type: 'string', arg: 'DIR', shown: '`DOCKER_CERT_PATH`', description: "a directory in the docker CLI's layout (`ca.pem`, `cert.pem`, `key.pem`), used when no `--docker-tls-*` is given" },
  'docker-ssh-key': { type: 'string', arg: 'FILE', shown: 'the agent at `SSH_AUTH_SOCK`', description: 'private key for `ssh://` engines' },
  'docker-ssh-known-hosts': { type: 'string', arg: 'FILE', shown: '`~/.ssh/known_hosts`', description: 'host keys `ssh://` engines must have (required: an unknown key is refused)' },
  'tls-cert': { type: 'string', arg: 'FILE', shown: 'plain HTTP', description: 'PEM certificate (chain) to serve HTTPS/WSS with; reloaded on SIGHUP and when the file changes, without a restart' },
  'tls-key': { type: 'string', arg: 'FILE', description: 'PEM key of `--tls-cert` (reloaded with it)' },
  'tls-client-ca': { type: 'string', arg: 'FILE', description: 'require a client certificate signed by this CA (mTLS); its subject is logged with each session' },
  'peer-ca': {
    type: 'string',
    arg: 'FILE',
    shown: "`--tls-client-ca`, else the system's CAs",
    description: "CA(s) that signed the other brokers' certificates, trusted when a resume is handed to one at an `https:` address (see [TLS between brokers](#many-brokers-shared-state)); given, it replaces the system's CAs",
  },
  'peer-cert': {
    type: 'string',
    arg: 'FILE',
    shown: '`--tls-cert`',
    description: "client certificate this broker presents when it hands a resume to another broker that asks for one (mTLS): signed by that broker's `--tls-client-ca`, with the `clientAuth` extended key usage, and holding `--peer-name` when given, else this broker's own address (the holder believes the client certificate it names only from a broker's); read again when it changes",
  },
  'peer-key': { type: 'string', arg: 'FILE', shown: '`--tls-key`', description: 'key of `--peer-cert` (given with it)' },
  'peer-name': {
    type: 'string',
    arg: 'NAME',
    shown: "the host of the holder's `--advertise-url`",
    description: "the name another broker's certificate is checked against when a resume is handed to it: for brokers that share a certificate naming their Service, not each one's address; under mTLS also the name that tells a broker's certificate from a person's, for the holder to believe the client certificate a broker names (without it, the address the broker connects from; see [Many brokers](#many-brokers-shared-state))",
  },
  'trusted-proxy': { type: 'string', array: true, arg: 'CIDR…', shown: 'none', description: 'proxies whose `X-Forwarded-For` is believed (see [TLS and proxies](#tls-and-proxies))' },
  'advertise-url': {
    type: 'string',
    arg: 'URL',
    shown: 'the listen address (the host name when it listens on every address)',
    description: 'how the other brokers reach this one: a resume that reaches another broker is handed here when this one holds the session (see [Session resume](#session-resume)), and a broker that finds this one\'s alive mark lapsed asks here before ending its sessions',
  },
  'metrics-listen': { type: 'string', arg: 'HOST:PORT', shown: 'off', description: 'Prometheus metrics at `/metrics` on a listener of their own, with `/healthz` and `/readyz` (see [Metrics](#metrics))' },
  'ping-interval': {
    type: 'number',
    arg: 'MS',
    default: DEFAULT_PING_INTERVAL_MS,
    description: 'PING messages and WebSocket pings: they keep proxies awake and give an idle connection bytes to acknowledge (see [Liveness](#liveness-a-paused-reader-is-not-a-dead-peer))',
  },
  'peer-timeout': {
    type: 'number',
    arg: 'MS',
    default: DEFAULT_PEER_TIMEOUT_MS,
    description: 'a client whose kernel has acknowledged nothing for this long (retransmissions or window probes unanswered) is gone: `ENTRY_PEER_TIMEOUT`',
  },
  'stall-timeout': {
    type: 'number',
    arg: 'MS',
    default: DEFAULT_STALL_TIMEOUT_MS,
    description: 'output queued to a client that has not moved for this long ends the session (`ENTRY_PEER_STALLED`), however alive the client; `0` no limit (at most about 24.8 days)',
  },
  'resume-grace': {
    type: 'number',
    arg: 'MS',
    default: DEFAULT_RESUME_GRACE_MS,
    description: 'a resumable session whose connection broke is kept this long, its processes running, for its client to resume it (see [Session resume](#session-resume)); `0` off',
  },
  'tcp-keepalive': { type: 'number', arg: 'MS', default: DEFAULT_TCP_KEEPALIVE_MS, description: 'kernel keepalive probes on client sockets after this much silence; `0` off' },
  'max-frame': { type: 'number', arg: 'BYTES', default: DEFAULT_MAX_FRAME_BYTES, description: 'largest client message (close 1009 beyond), but START, which may be four times as large (a command and its environment: Linux takes 2 MiB of them)' },
  'start-timeout': { type: 'number', arg: 'MS', default: DEFAULT_START_TIMEOUT_MS, description: 'time a protocol-2 client has to send START' },
  'open-timeout': {
    type: 'number',
    arg: 'MS',
    default: DEFAULT_OPEN_TIMEOUT_MS,
    description: "time the engine or cluster has to answer a session's start, else `ENTRY_DOCKER_UNAVAILABLE` or `ENTRY_CLUSTER_UNAVAILABLE` (what it may have started is ended)",
  },
  'allowed-origin': { type: 'string', array: true, arg: 'ORIGIN…', shown: 'same origin only', description: 'Origins allowed on browser upgrades, as browsers send them (`https://console.example`)' },
  'oidc-issuer': { type: 'string', arg: 'URL', description: 'the OIDC provider `enter login` uses (https; http only on loopback), told to clients by `GET /api/config`' },
  'oidc-client-id': {
    type: 'string',
    arg: 'ID',
    description: "the CLI's client id at that provider: a public client (no secret) allowed loopback redirects (`http://127.0.0.1/callback`, any port) and the device flow",
  },
  'oidc-scopes': {
    type: 'string',
    arg: '"S…"',
    default: 'openid profile offline_access',
    description: 'scopes `enter login` asks for (space or comma separated); `offline_access` brings a refresh token',
  },
  'idle-timeout': { type: 'number', arg: 'MS', default: DEFAULT_IDLE_TIMEOUT_MS, description: 'no input and no output for this long ends a session; `0` never (at most `2147483647`, about 24.8 days)' },
  'max-session': { type: 'number', arg: 'MS', default: DEFAULT_MAX_SESSION_MS, description: 'longest session; `0` no limit (at most about 24.8 days)' },
  'max-sessions': { type: 'number', arg: 'N', default: DEFAULT_MAX_SESSIONS, description: 'sessions one broker holds (close 1013 beyond)' },
  'body-timeout': {
    type: 'number',
    arg: 'MS',
    default: DEFAULT_BODY_TIMEOUT_MS,
    description: "an API request's body must arrive whole within this, else 408 (bodies over a route's limit get 413 before they are read)",
  },
  'handshake-timeout': { type: 'number', arg: 'MS', default: DEFAULT_HANDSHAKE_TIMEOUT_MS, description: 'an upgrade must send its headers and be admitted within this (slow-loris protection)' },
  'kill-grace': { type: 'number', arg: 'MS', default: DEFAULT_KILL_GRACE_MS, description: "SIGHUP, then SIGKILL after this, for a session's leftover processes (shorter than `--drain-timeout`, which waits for it)" },
  'drain-timeout': { type: 'number', arg: 'MS', default: DEFAULT_DRAIN_TIMEOUT_MS, description: 'on SIGTERM, exit after this even if sessions remain (exit status 1, with a `drain timed out` line; their clients are told `ENTRY_DRAINING` first, their processes are left to the ledger); a second SIGTERM or SIGINT exits at once, the same way' },
  'reap-mode': { type: 'string', arg: 'MODE', default: 'auto', description: 'how leftover processes are found: `host` (/proc; needs to read and signal the container\'s processes, as root or with CAP_SYS_PTRACE and CAP_KILL), `exec` (sh in the container), `auto` (host where it can, else exec)' },
  'state-dir': { type: 'string', arg: 'DIR', default: '/var/lib/entry', description: 'the session ledger (`sessions/`) when there is no `--redis-url`: a broker that starts ends the processes of sessions a dead broker left running; `none` disables' },
  'redis-url': { type: 'string', arg: 'URL', shown: 'in memory', description: '`redis://` or `rediss://`: shared state for several brokers' },
  'redis-sentinels': { type: 'string', array: true, arg: 'H:P…', description: 'Redis Sentinels, asked without TLS for the master; the user, password, database and TLS (`rediss://`) for the master are those of `--redis-url`' },
  // ioredis's own default, applied in store/redis-connection.ts.
  'redis-sentinel-name': { type: 'string', arg: 'NAME', shown: '`mymaster`', description: 'the master name the Sentinels know' },
  'redis-cluster': { type: 'boolean', default: false, description: '`--redis-url` lists Redis Cluster seed nodes, comma-separated' },
  'session-ttl': { type: 'number', arg: 'MS', default: DEFAULT_SESSION_TTL_MS, description: 'a session record lives this long without a heartbeat (every third of it)' },
  'max-user-sessions': { type: 'number', arg: 'N', default: DEFAULT_MAX_USER_SESSIONS, description: 'concurrent sessions per user across all brokers; `0` no cap' },
  'auth-failure-limit': { type: 'number', arg: 'N', default: DEFAULT_AUTH_FAILURE_LIMIT, description: 'failed authentications allowed per source address (an IPv6 address counts with its /64, which one host can fill, and a 6to4 one as its IPv4 host) in each `--auth-failure-window`, attempts still being checked counted with them (one past them waits for their outcome); past it the address is refused before its token is read (never counted per user: anyone holding an expired or revoked token could lock its user out)' },
  'auth-failure-window': { type: 'number', arg: 'MS', default: DEFAULT_AUTH_FAILURE_WINDOW_MS, description: 'the window `--auth-failure-limit` counts in' },
  'recordings-dir': { type: 'string', arg: 'DIR', default: '/var/lib/entry/recordings', description: 'session recordings; `none` disables' },
  'record-input': { type: 'boolean', default: false, description: 'also record what users type' },
  'recording-max-bytes': { type: 'number', arg: 'N', default: DEFAULT_RECORDING_MAX_BYTES, description: 'size cap of one recording (a marker notes the cut)' },
  'recording-retention-days': { type: 'number', arg: 'N', default: DEFAULT_RECORDING_RETENTION_DAYS, description: 'older recordings are deleted (a running session\'s never: it is kept fresh); `0` keeps all' },
  'audit-max-events': { type: 'number', arg: 'N', default: DEFAULT_AUDIT_MAX_EVENTS, description: 'audit events kept in the store (without Redis, also at most 16 MiB of them)' },
  'alert-rule': { type: 'string', array: true, arg: 'REGEX…', description: 'a typed command line, or a scripted run\'s command, matching it raises an `alert` event (repeat the flag; in `ENTRY_ALERT_RULE`, one rule per line)' },
  'watch-banner': { type: 'boolean', default: true, description: 'tell users when an admin watches their session' },
  'log-level': { type: 'string', arg: 'LEVEL', default: 'info', description: 'JSON lines on stderr: `debug`, `info`, `warn`, `error` or `silent`; token values are never logged' },
  'log-backlog': { type: 'number', arg: 'BYTES', default: DEFAULT_LOG_BACKLOG_BYTES, description: 'log lines waiting for a slow stderr reader; past this, lines are dropped and a warning counts them' },
  dev: { type: 'boolean', default: false, description: 'dev mode: loopback only, a generated key and an admin token for the local user' },
  'dev-token-file': { type: 'string', arg: 'FILE', shown: '`entry-dev-token` in `XDG_RUNTIME_DIR`, else the temp directory, per user', description: 'where dev mode writes its token (mode 0600), for `enter login < FILE`' },
} as const satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;

function setting(name: SettingName): Setting {
  return SETTINGS[name];
}

/** The default parseConfig uses for a numeric setting. */
export function defaultNumber(name: SettingName): number {
  const d = setting(name).default;
  if (typeof d !== 'number') throw new Error(`--${name} has no numeric default`);
  return d;
}

export function defaultString(name: SettingName): string {
  const d = setting(name).default;
  if (typeof d !== 'string') throw new Error(`--${name} has no string default`);
  return d;
}

export function defaultBoolean(name: SettingName): boolean {
  const d = setting(name).default;
  if (typeof d !== 'boolean') throw new Error(`--${name} has no boolean default`);
  return d;
}

export function defaultList(name: SettingName): string[] {
  const d = setting(name).default;
  if (!Array.isArray(d)) throw new Error(`--${name} has no list default`);
  return [...(d as readonly string[])];
}

/** The default column of the README (markdown); '' when there is none. */
export function shownDefault(s: Setting): string {
  if (s.shown !== undefined) return s.shown;
  if (s.default === undefined) return '';
  if (typeof s.default === 'boolean') return s.default ? 'on' : 'off';
  return `\`${Array.isArray(s.default) ? s.default.join(',') : String(s.default)}\``;
}

/** Markdown to terminal text: links keep their words, code loses its backticks. */
export function plainText(markdown: string): string {
  return markdown.replace(/\[([^\]]+)\]\([^)]*\)/g, '$1').replace(/`/g, '');
}

/** A table cell: a literal `|` would end the cell (GFM reads `\|` as one, also inside code). */
function cell(markdown: string): string {
  return markdown.replace(/\|/g, '\\|');
}

/** The README's broker options table, one row per setting. */
export function settingsTable(): string {
  const rows = Object.entries(SETTINGS).map(([name, s]: [string, Setting]) => {
    const flag = `\`--${name}${s.arg ? ` ${s.arg}` : ''}\``;
    return `|${[flag, shownDefault(s), s.description].map((c) => (c ? ` ${cell(c)} ` : ' ')).join('|')}|`;
  });
  return ['| option | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

/** The table's place in a README: from its header row to the first line that is not a row. */
export function findSettingsTable(readme: string): { start: number; end: number } | null {
  const start = readme.indexOf('\n| option | default | meaning |\n');
  if (start < 0) return null;
  let end = start + 1;
  while (readme.startsWith('|', end)) {
    const next = readme.indexOf('\n', end);
    end = next < 0 ? readme.length : next + 1;
  }
  return { start: start + 1, end };
}

/** The yargs option of a setting: its --help line says the argument, the meaning and the default. */
export function yargsOption(s: Setting): { type: Setting['type']; array?: true; describe: string; defaultDescription?: string } {
  const shown = shownDefault(s);
  return {
    // Numbers reach the config as written: yargs' own Number() takes `0x10` for 16 and `1e3`
    // for 1000, which the config refuses from a variable or the file alike.
    type: s.type === 'number' ? 'string' : s.type,
    ...(s.array ? { array: true as const } : {}),
    describe: `${s.arg ? `${s.arg} — ` : ''}${plainText(s.description)}`,
    // defaultDescription only prints `[default: …]`; the value stays unset so that an ENTRY_*
    // variable or the config file can still supply it (readSettings).
    ...(shown ? { defaultDescription: plainText(shown) } : {}),
  };
}

import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ConfigError, type RawSettings } from './config.js';

/** The broker's options. Defaults live in parseConfig, not here, so all three sources share them. */
const OPTIONS = {
  listen: { type: 'string', describe: 'HOST:PORT to listen on [default: 127.0.0.1:8022]' },
  'jwt-public-key': { type: 'string', describe: 'PEM public key (RSA, EC or Ed25519) that signs tokens' },
  'jwks-url': { type: 'string', describe: 'JWKS URL of an OIDC issuer' },
  'jwt-secret-file': { type: 'string', describe: 'file holding an HMAC secret (HS256/384/512, ≥ 32 bytes)' },
  issuer: { type: 'string', describe: 'required `iss` of tokens' },
  audience: { type: 'string', describe: 'required `aud` of tokens' },
  'clock-tolerance': { type: 'number', describe: 'seconds of clock skew tolerated on exp/nbf [default: 30]' },
  'user-claim': { type: 'string', describe: 'claim path naming the user [default: sub]' },
  'apps-claim': { type: 'string', describe: 'claim path listing enterable apps (globs) [default: apps]' },
  'roles-claim': { type: 'string', describe: 'claim path listing roles, e.g. realm_access.roles [default: roles]' },
  'admin-role': { type: 'string', describe: 'role that may enter every app [default: entry-admin]' },
  'deny-apps': { type: 'string', array: true, describe: 'apps never enterable [default: entry]' },
  'docker-host': { type: 'string', array: true, describe: '[NAME=]URL of a Docker engine, repeatable: unix://, tcp:// (TLS with DOCKER_CERT_PATH), ssh://; none: no Docker [default: DOCKER_HOST or the local socket; none with --kubeconfig]' },
  kubeconfig: { type: 'string', describe: 'serve Kubernetes pods: a kubeconfig file, or in-cluster for the pod\'s service account [default: off]' },
  'kube-context': { type: 'string', describe: 'kubeconfig context to use [default: its current context]' },
  'kube-namespace': { type: 'string', array: true, describe: 'namespace to serve, repeatable [default: every namespace the broker may list]' },
  'docker-tls-ca': { type: 'string', describe: 'CA that signed the tcp:// engines\' certificates (any --docker-tls-* turns TLS on) [default: DOCKER_CERT_PATH/ca.pem]' },
  'docker-tls-cert': { type: 'string', describe: 'client certificate for tcp:// engines [default: DOCKER_CERT_PATH/cert.pem]' },
  'docker-tls-key': { type: 'string', describe: 'key of --docker-tls-cert [default: DOCKER_CERT_PATH/key.pem]' },
  'docker-cert-path': { type: 'string', describe: 'directory with ca.pem, cert.pem, key.pem, as the docker CLI reads it [default: DOCKER_CERT_PATH]' },
  'docker-ssh-key': { type: 'string', describe: 'private key for ssh:// engines [default: the agent at SSH_AUTH_SOCK]' },
  'docker-ssh-known-hosts': { type: 'string', describe: 'known_hosts file the ssh:// engines\' host keys must be in [default: ~/.ssh/known_hosts]' },
  'tls-cert': { type: 'string', describe: 'PEM certificate (chain) to serve HTTPS/WSS with; reloaded on SIGHUP and when the file changes' },
  'tls-key': { type: 'string', describe: 'PEM key of --tls-cert' },
  'tls-client-ca': { type: 'string', describe: 'CA for client certificates: every client must present one it signed (mTLS)' },
  'trusted-proxy': { type: 'string', array: true, describe: 'CIDR of a TLS-terminating proxy whose X-Forwarded-For/-Proto are believed (repeatable)' },
  'metrics-listen': { type: 'string', describe: 'HOST:PORT serving Prometheus metrics at /metrics (a separate listener) [default: off]' },
  'ping-interval': { type: 'number', describe: 'ms between PING messages [default: 10000]' },
  'peer-timeout': { type: 'number', describe: 'ms without any acknowledgement from a client\'s kernel before it counts as gone [default: 30000]' },
  'stall-timeout': { type: 'number', describe: 'ms output may stay queued to a client without draining; 0: no limit [default: 3600000]' },
  'tcp-keepalive': { type: 'number', describe: 'ms of silence before kernel keepalive probes on client sockets; 0: off [default: 30000]' },
  'max-frame': { type: 'number', describe: 'largest client message in bytes [default: 1048576]' },
  'start-timeout': { type: 'number', describe: 'ms a protocol-2 client has to send START [default: 10000]' },
  'idle-timeout': { type: 'number', describe: 'ms without input or output that end a session; 0: never [default: 14400000]' },
  'max-session': { type: 'number', describe: 'ms a session may last at most; 0: no limit [default: 0]' },
  'max-sessions': { type: 'number', describe: 'sessions this broker holds at once [default: 2000]' },
  'body-timeout': { type: 'number', describe: 'ms a request body has to arrive whole before 408 [default: 10000]' },
  'handshake-timeout': { type: 'number', describe: 'ms an upgrade has to send its headers and be admitted [default: 10000]' },
  'kill-grace': { type: 'number', describe: 'ms between SIGHUP and SIGKILL for a session\'s leftover processes [default: 2000]' },
  'drain-timeout': { type: 'number', describe: 'ms the broker waits for sessions to end on SIGTERM [default: 20000]' },
  'reap-mode': { type: 'string', describe: 'how leftover processes are found: auto, host or exec [default: auto]' },
  'session-ttl': { type: 'number', describe: 'ms a session record lives without a heartbeat [default: 15000]' },
  'max-user-sessions': { type: 'number', describe: 'concurrent sessions per user across brokers; 0: no cap [default: 0]' },
  'auth-failure-limit': { type: 'number', describe: 'failed authentications per source address and per user per window [default: 20]' },
  'auth-failure-window': { type: 'number', describe: 'ms of the auth-failure window [default: 60000]' },
  'redis-url': { type: 'string', describe: 'redis:// or rediss:// URL of the shared store (several brokers); none: in memory' },
  'redis-sentinels': { type: 'string', array: true, describe: 'host:port of Redis Sentinels (with --redis-url for credentials)' },
  'redis-sentinel-name': { type: 'string', describe: 'Sentinel master name [default: mymaster]' },
  'redis-cluster': { type: 'boolean', describe: '--redis-url lists Redis Cluster seed nodes, comma-separated' },
  'recordings-dir': { type: 'string', describe: 'where session recordings (.cast) go; "none" disables [default: /var/lib/entry/recordings]' },
  'record-input': { type: 'boolean', describe: 'also record what users type ("i" events) [default: false]' },
  'recording-max-bytes': { type: 'number', describe: 'size cap of one recording [default: 104857600]' },
  'recording-retention-days': { type: 'number', describe: 'recordings older than this are deleted; 0 keeps all [default: 90]' },
  'audit-max-events': { type: 'number', describe: 'audit events kept in the store [default: 100000]' },
  'alert-rule': { type: 'string', array: true, describe: 'regular expression: a typed command matching it raises an alert event (repeatable)' },
  'watch-banner': { type: 'boolean', describe: 'tell users when an admin watches their session [default: true]' },
  'allowed-origin': { type: 'string', array: true, describe: 'Origin allowed for browser upgrades (repeatable)' },
  'oidc-issuer': { type: 'string', describe: 'OIDC issuer clients log in with (enter login); tokens are still verified by --jwks-url' },
  'oidc-client-id': { type: 'string', describe: 'OIDC client id of the enter CLI (a public client)' },
  'oidc-scopes': { type: 'string', describe: 'scopes enter login asks for, space or comma separated [default: openid profile offline_access]' },
  'log-level': { type: 'string', describe: 'debug, info, warn, error or silent [default: info]' },
  'log-backlog': { type: 'number', describe: 'bytes of log lines kept waiting for a slow stderr reader; more are dropped and counted [default: 4194304]' },
  dev: { type: 'boolean', describe: 'dev mode: generate a key, mint a token for the local user (loopback only)' },
} as const;

/**
 * Reads the broker's settings. Each option comes from its flag, else its ENTRY_* variable
 * (`--jwt-public-key` ← ENTRY_JWT_PUBLIC_KEY), else the JSON file given by --config.
 */
export function readSettings(argv = hideBin(process.argv), env: NodeJS.ProcessEnv = process.env): RawSettings {
  const parsed = yargs(argv)
    .scriptName('entry-broker')
    .usage('$0 [options]\n\nThe Entry broker: WebSocket exec into Docker containers.\nEvery option can also be set as ENTRY_<NAME> (e.g. ENTRY_JWT_PUBLIC_KEY) or in a JSON --config file.')
    .options(OPTIONS)
    .option('config', { type: 'string', describe: 'JSON config file (keys are the option names)' })
    .strict()
    .help()
    .version(false)
    .parseSync() as Record<string, unknown>;
  const configPath = (parsed['config'] as string | undefined) ?? env['ENTRY_CONFIG'];
  const file = configPath ? readConfigFile(configPath) : {};
  for (const key of Object.keys(file)) {
    if (!(key in OPTIONS)) throw new ConfigError(`${key} (in ${configPath})`, 'unknown setting');
  }
  const raw: RawSettings = {};
  for (const key of Object.keys(OPTIONS)) {
    const envName = `ENTRY_${key.toUpperCase().replace(/-/g, '_')}`;
    raw[key] = parsed[key] !== undefined ? parsed[key] : env[envName] !== undefined ? env[envName] : file[key];
  }
  // ENTRY_DOCKER_HOSTS lists several, comma-separated; DOCKER_HOST is the usual single default.
  if (raw['docker-host'] === undefined && env['ENTRY_DOCKER_HOSTS']) raw['docker-host'] = env['ENTRY_DOCKER_HOSTS'];
  if (raw['docker-host'] === undefined && env['DOCKER_HOST']) raw['docker-host'] = env['DOCKER_HOST'];
  if (raw['docker-cert-path'] === undefined && env['DOCKER_CERT_PATH']) raw['docker-cert-path'] = env['DOCKER_CERT_PATH'];
  return raw;
}

function readConfigFile(path: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError('--config', `cannot read ${path}: ${(err as Error).message}`);
  }
}

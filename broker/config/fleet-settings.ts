import { existsSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { join } from 'node:path';
import { ConfigError } from './config-error.js';

type Raw = Record<string, unknown>;

/** TLS on the broker's listener: a certificate and key, and a CA for client certificates (mTLS). */
export interface ListenerTls {
  cert: string;
  key: string;
  /** With it, every client must present a certificate this CA signed. */
  clientCa: string | undefined;
}

/** Files the broker authenticates to remote engines with (tcp:// TLS, ssh://). */
export interface DockerClientFiles {
  tlsCa: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  sshKey: string | undefined;
  sshKnownHosts: string | undefined;
}

function str(raw: Raw, key: string): string | undefined {
  const v = raw[key];
  if (v === undefined || v === null || v === '') return undefined;
  return String(v);
}

function file(raw: Raw, key: string): string | undefined {
  const path = str(raw, key);
  if (path !== undefined && !existsSync(path)) throw new ConfigError(`--${key}`, `no such file: ${path}`);
  return path;
}

/** --tls-cert, --tls-key, --tls-client-ca. */
export function parseListenerTls(raw: Raw): ListenerTls | null {
  const cert = file(raw, 'tls-cert');
  const key = file(raw, 'tls-key');
  const clientCa = file(raw, 'tls-client-ca');
  if (!cert && !key) {
    if (clientCa) throw new ConfigError('--tls-client-ca', 'needs --tls-cert and --tls-key');
    return null;
  }
  if (!cert) throw new ConfigError('--tls-cert', 'required with --tls-key');
  if (!key) throw new ConfigError('--tls-key', 'required with --tls-cert');
  return { cert, key, clientCa };
}

/**
 * What this broker shows and trusts when it hands a resume to another broker over TLS. Each
 * file says where it came from (the setting given, or the listener's it defaults to), for the
 * errors and log lines that name it.
 */
export interface PeerTls {
  /** CA(s) the other brokers' certificates must chain to; undefined: the system's. */
  ca: { file: string; setting: '--peer-ca' | '--tls-client-ca' } | undefined;
  /** Client certificate and key; undefined: none is presented. */
  identity: { cert: string; key: string; setting: '--peer-cert' | '--tls-cert' } | undefined;
  /** The name their certificates must hold; undefined: the host of each one's advertised URL. */
  name?: string | undefined;
}

/**
 * --peer-ca, --peer-cert, --peer-key, --peer-name. A broker that asks its own clients for certificates
 * (--tls-client-ca) trusts that CA for its peers too, and presents its own listener
 * certificate to them: in a fleet under mTLS, the brokers' certificates are client
 * certificates of that CA, or no broker could hand a resume to another.
 */
export function parsePeerTls(raw: Raw, listener: ListenerTls | null): PeerTls {
  const ca = file(raw, 'peer-ca');
  const cert = file(raw, 'peer-cert');
  const key = file(raw, 'peer-key');
  if (Boolean(cert) !== Boolean(key)) throw new ConfigError(cert ? '--peer-key' : '--peer-cert', 'required with ' + (cert ? '--peer-cert' : '--peer-key'));
  const name = str(raw, 'peer-name');
  // A host name or an address, as a certificate holds it: no scheme, port or path.
  if (name !== undefined && !isIP(name) && !/^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(name)) {
    throw new ConfigError('--peer-name', `want a host name or an address as the certificates hold it, got ${JSON.stringify(name)}`);
  }
  return {
    name,
    ca: ca ? { file: ca, setting: '--peer-ca' } : listener?.clientCa ? { file: listener.clientCa, setting: '--tls-client-ca' } : undefined,
    identity: cert && key ? { cert, key, setting: '--peer-cert' } : listener ? { cert: listener.cert, key: listener.key, setting: '--tls-cert' } : undefined,
  };
}

/** --trusted-proxy CIDR…: addresses whose X-Forwarded-For is believed. */
export function parseTrustedProxies(raw: Raw): string[] {
  const v = raw['trusted-proxy'];
  if (v === undefined || v === null) return [];
  const items = (Array.isArray(v) ? v : [v]).flatMap((x) => String(x).split(/[,\s]+/)).filter(Boolean);
  for (const cidr of items) cidrBlock(cidr);
  return items;
}

/** Adds one `ADDR[/PREFIX]` to a BlockList; throws ConfigError naming --trusted-proxy. */
export function cidrBlock(cidr: string, list = new BlockList()): BlockList {
  const [addr, prefix] = cidr.split('/');
  const family = isIP(addr ?? '');
  const bits = prefix === undefined ? (family === 6 ? 128 : 32) : Number(prefix);
  if (!family || !Number.isInteger(bits) || bits < 0 || bits > (family === 6 ? 128 : 32)) {
    throw new ConfigError('--trusted-proxy', `want an address or CIDR like 10.0.0.0/8, got ${JSON.stringify(cidr)}`);
  }
  list.addSubnet(addr!, bits, family === 6 ? 'ipv6' : 'ipv4');
  return list;
}

/** --metrics-listen HOST:PORT, or null. */
export function parseMetricsListen(raw: Raw, parseListen: (v: string) => { host: string; port: number }): { host: string; port: number } | null {
  const v = str(raw, 'metrics-listen');
  if (!v) return null;
  try {
    return parseListen(v);
  } catch {
    throw new ConfigError('--metrics-listen', `want HOST:PORT, got ${JSON.stringify(v)}`);
  }
}

/**
 * --docker-tls-ca/--docker-tls-cert/--docker-tls-key (shared by every tcp:// host; any of them
 * turns TLS on), else DOCKER_CERT_PATH's ca.pem, cert.pem, key.pem as the docker CLI reads them;
 * --docker-ssh-key and --docker-ssh-known-hosts for ssh:// hosts.
 */
export function parseDockerClientFiles(raw: Raw): DockerClientFiles {
  const files: DockerClientFiles = {
    tlsCa: file(raw, 'docker-tls-ca'),
    tlsCert: file(raw, 'docker-tls-cert'),
    tlsKey: file(raw, 'docker-tls-key'),
    sshKey: file(raw, 'docker-ssh-key'),
    sshKnownHosts: file(raw, 'docker-ssh-known-hosts'),
  };
  const certPath = str(raw, 'docker-cert-path');
  if (certPath && !files.tlsCa && !files.tlsCert && !files.tlsKey) {
    const at = (name: string) => (existsSync(join(certPath, name)) ? join(certPath, name) : undefined);
    files.tlsCa = at('ca.pem');
    files.tlsCert = at('cert.pem');
    files.tlsKey = at('key.pem');
  }
  if (Boolean(files.tlsCert) !== Boolean(files.tlsKey)) throw new ConfigError('--docker-tls-cert', 'the client certificate and --docker-tls-key go together');
  return files;
}

/** Parses `[NAME=]URL`; a host without a name is called by its URL's host part, or `local`. */
export function parseHostSpec(spec: string): { name: string; url: string } {
  const m = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,62})=(.+)$/.exec(spec.trim());
  const url = (m ? m[2]! : spec).trim();
  if (!/^(unix|tcp|https?|ssh):\/\//.test(url) && !url.startsWith('/')) {
    throw new ConfigError('--docker-host', `want [NAME=]unix:///path, tcp://host:port or ssh://user@host, got ${JSON.stringify(spec)}`);
  }
  if (m) return { name: m[1]!, url };
  if (url.startsWith('unix://') || url.startsWith('/')) return { name: 'local', url };
  let host = '';
  try {
    host = new URL(url).host;
  } catch {
    // Left empty: the check below says so.
  }
  if (!host) throw new ConfigError('--docker-host', `no host in ${JSON.stringify(spec)}`);
  return { name: host, url };
}

import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { urlList } from '../url-list.js';

export interface RedisSettings {
  /** redis://[user:pass@]host:port[/db] or rediss:// for TLS; comma-separated seeds with `cluster`. */
  url: string;
  /** Sentinel mode: `host:port` of each sentinel, and the master's name. */
  sentinels: string[];
  sentinelName: string | undefined;
  cluster: boolean;
}

/**
 * Commands fail at once while Redis is unreachable instead of queueing: what needs Redis
 * fails closed with a clear reason, and the client reconnects by itself in the background.
 */
const COMMON: RedisOptions = {
  enableOfflineQueue: false,
  // A Redis that keeps its connection and stops answering (paused, a partition) fails each
  // command after this rather than holding it (and whoever waits on it) for good.
  commandTimeout: 5_000,
  maxRetriesPerRequest: 1,
  connectTimeout: 2_000,
  // 100 ms, 200 ms, … capped at 2 s: back quickly after a restart without hammering a dead host.
  retryStrategy: (times) => Math.min(times * 100, 2_000),
  lazyConnect: true,
};

function hostPort(s: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s.trim());
  if (!m) throw new Error(`want host:port, got ${s}`);
  return { host: m[1]!, port: Number(m[2]) };
}

/**
 * What a `redis://` or `rediss://` URL says besides where the server is: who to log in as, the
 * database, TLS. Sentinel and Cluster clients are given their nodes apart, and the URL's
 * settings only through these options.
 */
export function urlOptions(u: string): RedisOptions {
  const url = new URL(u.trim());
  const db = url.pathname.replace(/^\//, '');
  return {
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(db ? { db: Number(db) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

export function createRedisClient(settings: RedisSettings): Redis | Cluster {
  if (settings.cluster) {
    const urls = urlList(settings.url);
    const nodes = urls.map((u) => {
      const url = new URL(u);
      // An IPv6 seed's hostname keeps its brackets in a URL; a socket wants the address alone.
      return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port || 6379) };
    });
    return new Cluster(nodes, {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: (times) => Math.min(times * 100, 2_000),
      redisOptions: { ...COMMON, ...urlOptions(urls[0]!) },
    });
  }
  if (settings.sentinels.length > 0) {
    const options = urlOptions(settings.url);
    return new Redis({
      ...COMMON,
      sentinels: settings.sentinels.map(hostPort),
      name: settings.sentinelName ?? 'mymaster',
      ...options,
      // rediss:// is for the master and replicas the Sentinels name; the Sentinels are asked in clear.
      ...(options.tls ? { enableTLSForSentinelMode: true } : {}),
    });
  }
  return new Redis(settings.url, COMMON);
}

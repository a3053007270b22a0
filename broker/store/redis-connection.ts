import { Cluster, Redis, type RedisOptions } from 'ioredis';

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

export function createRedisClient(settings: RedisSettings): Redis | Cluster {
  if (settings.cluster) {
    const nodes = settings.url.split(',').map((u) => {
      const url = new URL(u.trim());
      return { host: url.hostname, port: Number(url.port || 6379) };
    });
    const first = new URL(settings.url.split(',')[0]!.trim());
    return new Cluster(nodes, {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: (times) => Math.min(times * 100, 2_000),
      redisOptions: { ...COMMON, ...(first.password ? { password: decodeURIComponent(first.password) } : {}), ...(first.protocol === 'rediss:' ? { tls: {} } : {}) },
    });
  }
  if (settings.sentinels.length > 0) {
    const url = new URL(settings.url);
    return new Redis({
      ...COMMON,
      sentinels: settings.sentinels.map(hostPort),
      name: settings.sentinelName ?? 'mymaster',
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    });
  }
  return new Redis(settings.url, COMMON);
}

import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { type Cluster, Redis } from 'ioredis';
import { createRedisClient } from '../../broker/store/redis-connection.js';
import { RedisStore } from '../../broker/store/redis-store.js';
import { stopChild } from './child.js';

/** A free loopback TCP port (the OS picks; redis-server cannot take port 0 itself). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The store a broker keeps on the Redis at `url`, through a client made as the broker makes it,
 * not yet connected. The broker reports the client's connection errors; a test expects them.
 */
export function storeAt(url: string): { client: Redis | Cluster; store: RedisStore } {
  const client = createRedisClient({ url, sentinels: [], sentinelName: undefined, cluster: false });
  client.on('error', () => undefined);
  return { client, store: new RedisStore(client) };
}

/** A real redis-server of the test's own on loopback, stoppable and restartable on the same port. */
export class TestRedis {
  private child: ChildProcess | undefined;
  port = 0;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /**
   * Starts the server, on a free port the first time. A port taken between being found free and
   * being bound (another run on the machine) is given up for another; a server that does not
   * answer in time is stopped before the failure is thrown.
   */
  async start(): Promise<void> {
    const chosen = !this.port;
    for (let attempt = 1; ; attempt++) {
      if (chosen && attempt > 1) this.port = await freePort();
      if (!this.port) this.port = await freePort();
      if (await this.startOn(this.port)) return;
      if (!chosen || attempt === 3) throw new Error(`redis-server could not listen on 127.0.0.1:${this.port}`);
    }
  }

  /** True once the server answers; false when it exited first (its port taken). */
  private async startOn(port: number): Promise<boolean> {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: 'ignore' });
    this.child = child;
    let exited = false;
    child.once('exit', () => (exited = true));
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    // Refused until the server listens: connect() rejects with it, which the loop handles.
    probe.on('error', () => undefined);
    const deadline = Date.now() + 10_000;
    try {
      for (;;) {
        try {
          await probe.connect();
          // Another run's server on a port ours could not take answers too: ours must be alive.
          if ((await probe.ping()) === 'PONG') return !exited && child.exitCode === null;
        } catch {
          if (exited) return false;
          if (Date.now() > deadline) {
            await stopChild(child);
            throw new Error('redis-server did not answer within 10 s');
          }
          probe.disconnect();
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    } finally {
      probe.disconnect();
    }
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }

  /** Stops the server answering while its connections stay open (SIGSTOP); `unpause` goes on. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  unpause(): void {
    this.child?.kill('SIGCONT');
  }

  client(): Redis {
    return new Redis({ port: this.port, host: '127.0.0.1' });
  }
}

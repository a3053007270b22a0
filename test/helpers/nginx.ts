import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopChild } from './child.js';
import { freePort } from './redis.js';

/**
 * nginx from Debian as the load balancer in front of several brokers, configured the way
 * deploy/README.md documents: HTTP/1.1 upstream, Upgrade/Connection passed on, read timeout
 * well above the ping interval, send timeout long enough for a paused reader, the brokers'
 * own `entry-forwarded-*` headers dropped from what clients send.
 */
export class TestNginx {
  private child: ChildProcess | undefined;
  private dir: string | undefined;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(upstreams: string[]): Promise<void> {
    this.port = await freePort();
    const dir = (this.dir = mkdtempSync(join(tmpdir(), 'entry-nginx-')));
    // nginx's workers run as an unprivileged user and spool large chunked bodies under `dir`.
    chmodSync(dir, 0o755);
    const servers = upstreams.map((u) => `    server ${new URL(u).host} max_fails=1 fail_timeout=5s;`).join('\n');
    const conf = `
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream entry {
${servers}
  }
  server {
    listen 127.0.0.1:${this.port};
    location / {
      proxy_pass http://entry;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header entry-forwarded-by "";
      proxy_set_header entry-forwarded-client-cert "";
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
      # nginx drops a client that takes nothing for send_timeout (60 s by default): a paused reader.
      send_timeout 3600s;
      proxy_buffering off;
      client_max_body_size 64k;
      client_body_buffer_size 64k;
      proxy_next_upstream error timeout;
    }
  }
}
`;
    writeFileSync(join(dir, 'nginx.conf'), conf);
    this.child = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await this.listening())) {
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error('nginx did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private listening(): Promise<boolean> {
    return new Promise((resolve) => {
      const s = connect(this.port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  }

  /** SIGQUIT: nginx's graceful shutdown; then its configuration, logs and spool go. */
  async stop(): Promise<void> {
    await stopChild(this.child, 'SIGQUIT');
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

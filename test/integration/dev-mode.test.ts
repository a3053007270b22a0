import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopChild } from '../helpers/child.js';
import { runCli } from '../helpers/cli.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { startDevBroker } from '../helpers/dev-broker.js';
import { freePort } from '../helpers/redis.js';
import { openCommand } from '../helpers/sessions.js';

/**
 * A broker in dev mode, as deploy/dev/up.sh runs it, and the token it writes: the local user
 * is its operator, so the admin commands work with it as entering does.
 */
describe("a dev broker's own token", () => {
  const dir = mkdtempSync(join(tmpdir(), 'entry-dev-mode-'));
  const containers = new TestContainers();
  const app = uniqueApp('dev');
  let broker: ChildProcess;
  let url: string;
  let token: string;

  beforeAll(async () => {
    await containers.entry(app, 'web', 1);
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const tokenFile = join(dir, 'token');
    broker = await startDevBroker(['--listen', `127.0.0.1:${port}`, '--dev-token-file', tokenFile]);
    token = readFileSync(tokenFile, 'utf8').trim();
  });
  afterAll(async () => {
    await stopChild(broker);
    await containers.removeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('enters, and lists the sessions with enter sessions, which only admins may', async () => {
    const s = await openCommand(`${url.replace(/^http/, 'ws')}/enter`, token, { app, proc: 'web', instance: 1 }, ['sh', '-c', 'echo up; sleep 1017']);
    try {
      await s.waitFor(() => s.stdoutText() === 'up\n', 'the session');
      const listed = await runCli(['sessions', '--json'], { ENTRY_BROKER: url, ENTRY_TOKEN: token, ENTRY_CONFIG_DIR: join(dir, 'config') });
      expect(listed.stderr.toString()).toBe('');
      expect(listed.status).toBe(0);
      const rows = JSON.parse(listed.stdout.toString()) as Array<{ app: string; proc: string; instance: string }>;
      expect(rows.filter((r) => r.app === app)).toMatchObject([{ app, proc: 'web', instance: '1' }]);
    } finally {
      s.ws.terminate();
      await s.closed;
    }
  });
});

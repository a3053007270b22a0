import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../client/api.js';
import { startTestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import { haveSshd, TestSshServer } from '../helpers/ssh-server.js';

/** An ssh:// Docker host: Debian's sshd on loopback, `docker system dial-stdio` behind it. */
describe.skipIf(!haveSshd)('a Docker host over ssh://', () => {
  const sshd = new TestSshServer();
  const containers = new TestContainers();
  const app = uniqueApp('ss');
  let containerId = '';

  beforeAll(async () => {
    await sshd.start();
    containerId = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await containers.removeAll();
    await sshd.stop();
  });

  it('indexes the host and runs sessions through it', { timeout: 90_000 }, async () => {
    const b = await startTestBroker({
      'docker-host': [`viassh=ssh://root@127.0.0.1:${sshd.port}`],
      'docker-ssh-key': sshd.clientKey,
      'docker-ssh-known-hosts': sshd.knownHosts,
    });
    try {
      // Every Engine API call over ssh:// is an ssh connection of its own: the first sync takes a moment.
      const upMs = await eventually(async () => ((await (await fetch(`${b.url}/readyz`)).json()) as { hosts: Record<string, boolean> }).hosts['viassh'] === true, 'the ssh host to be up', 40_000);
      console.log(`ssh: host indexed ${upMs} ms after the broker started`);
      const s = await openCommand(b.wsUrl, await b.mint({ apps: [app] }), { app, proc: 'web', instance: 1 }, ['sh', '-c', 'hostname; echo over-ssh']);
      await s.closed;
      expect(s.stdoutText()).toBe(`${containerId.slice(0, 12)}\nover-ssh\n`);
      expect(s.closeMessage()?.code ?? '').toBe('');
      // stdin and its end reach the process through the ssh channel too.
      const piped = await run({ broker: b.url, token: await b.mint({ apps: [app] }), target: { app, proc: 'web', instance: 1 }, command: ['sh', '-c', 'wc -c'], stdin: 'x'.repeat(10_000) });
      expect(piped.stdout.toString().trim()).toBe('10000');
    } finally {
      await b.stop();
    }
  });

  it('refuses a host whose key is not in known_hosts', async () => {
    const other = join(sshd.dir, 'other_known_hosts');
    writeFileSync(other, `[127.0.0.1]:${sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`);
    const b = await startTestBroker({
      'docker-host': [`viassh=ssh://root@127.0.0.1:${sshd.port}`],
      'docker-ssh-key': sshd.clientKey,
      'docker-ssh-known-hosts': other,
    });
    try {
      expect((await fetch(`${b.url}/readyz`)).status).toBe(503);
    } finally {
      await b.stop();
    }
  });
});

import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerClientOptions } from '../../broker/docker/client-options.js';
import { connectDocker, disconnectDocker } from '../../broker/docker/engine.js';
import { run } from '../../client/api.js';
import { startTestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import { haveSshd, TestSshServer } from '../helpers/ssh-server.js';

/** ssh2's error for a host key the verifier turned down. */
const HOST_KEY_REFUSED = /host denied \(verification failed\)/i;

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

  it('reaches a host given by its IPv6 address', { timeout: 90_000 }, async () => {
    const b = await startTestBroker({
      'docker-host': [`viassh6=ssh://root@[::1]:${sshd.port}`],
      'docker-ssh-key': sshd.clientKey,
      'docker-ssh-known-hosts': sshd.knownHosts,
    });
    try {
      await eventually(async () => ((await (await fetch(`${b.url}/readyz`)).json()) as { hosts: Record<string, boolean> }).hosts['viassh6'] === true, 'the ssh host to be up', 40_000);
      const s = await openCommand(b.wsUrl, await b.mint({ apps: [app] }), { app, proc: 'web', instance: 1 }, ['echo', 'over-ssh6']);
      await s.closed;
      expect(s.stdoutText()).toBe('over-ssh6\n');
      expect(s.closeMessage()?.code ?? '').toBe('');
    } finally {
      await b.stop();
    }
  });

  it('keeps one ssh connection for calls one after another, and closes it when told', async () => {
    // A TCP relay in front of sshd counts the connections made to it.
    const accepted: Socket[] = [];
    const relay = createServer((c) => {
      accepted.push(c);
      const upstream = connect(sshd.port, '127.0.0.1');
      c.pipe(upstream).pipe(c);
      c.on('error', () => upstream.destroy());
      upstream.on('error', () => c.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const port = (relay.address() as { port: number }).port;
    const knownHosts = join(sshd.dir, 'relay_known_hosts');
    writeFileSync(knownHosts, readFileSync(sshd.knownHosts, 'utf8').replace(`[127.0.0.1]:${sshd.port}`, `[127.0.0.1]:${port}`));
    const url = `ssh://root@127.0.0.1:${port}`;
    const docker = connectDocker(url, dockerClientOptions({ tlsCa: undefined, tlsCert: undefined, tlsKey: undefined, sshKey: sshd.clientKey, sshKnownHosts: knownHosts }, [{ url }]));
    try {
      for (let i = 0; i < 10; i++) expect(String(await docker.ping())).toBe('OK');
      expect((await docker.listContainers()).length).toBeGreaterThan(0);
      expect(accepted).toHaveLength(1);
      const closed = new Promise((resolve) => accepted[0]!.once('close', resolve));
      disconnectDocker(docker);
      await closed;
    } finally {
      disconnectDocker(docker);
      relay.close();
      for (const c of accepted) c.destroy();
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
      // A good host answers 503 too while its first sync runs: wait for the refusal itself.
      const unreachable = () => b.logs.find((l) => l.includes('"docker host unreachable"') && l.includes('"host":"viassh"'));
      await eventually(async () => unreachable() !== undefined, 'the broker to give up on the host', 40_000);
      const reason = (JSON.parse(unreachable()!) as { reason: string }).reason;
      expect(reason).toMatch(HOST_KEY_REFUSED);
      const res = await fetch(`${b.url}/readyz`);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { hosts: Record<string, boolean> }).hosts).toEqual({ viassh: false });
      // A session there is refused with the same reason.
      const s = await openCommand(b.wsUrl, await b.mint({ apps: [app] }), { app, proc: 'web', instance: 1 }, ['true']);
      await s.closed;
      expect(s.closeMessage()?.code).toBe('ENTRY_DOCKER_UNAVAILABLE');
      expect(new TextDecoder().decode(s.closeMessage()!.content)).toMatch(HOST_KEY_REFUSED);
    } finally {
      await b.stop();
    }
  });
});

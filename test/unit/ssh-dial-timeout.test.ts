import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, utils } from 'ssh2';
import { afterEach, describe, expect, it } from 'vitest';
import { dockerFailure, unanswered } from '../../broker/docker/engine.js';
import { SshDialAgent } from '../../broker/docker/ssh-transport.js';

const hostKey = utils.generateKeyPairSync('ed25519').private;
const clientKey = utils.generateKeyPairSync('ed25519').private;

/** An sshd that logs anyone in and opens session channels, but never answers an exec request. */
async function stuckSshd(): Promise<{ port: number; execs: () => number; close: () => Promise<void> }> {
  let execs = 0;
  const server = new Server({ hostKeys: [hostKey] }, (client) => {
    client.on('authentication', (ctx) => ctx.accept());
    client.on('session', (accept) => {
      accept().on('exec', () => {
        execs++;
      });
    });
    client.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    execs: () => execs,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const cleanUp: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanUp.splice(0).reverse()) await c();
});

describe('SshDialAgent against an sshd that never starts docker system dial-stdio', () => {
  it('fails the Engine API call after the dial timeout, naming the host, as the engine unavailable', async () => {
    const sshd = await stuckSshd();
    cleanUp.push(sshd.close);
    const agent = new SshDialAgent({ host: '127.0.0.1', port: sshd.port, username: 'root', privateKey: Buffer.from(clientKey), dialTimeoutMs: 300 });
    cleanUp.push(() => agent.destroy());
    const started = performance.now();
    const err = await new Promise<Error>((resolve, reject) => {
      const req = request({ agent, host: 'docker', path: '/_ping' }, () => reject(new Error('answered')));
      req.once('error', resolve);
      req.end();
    });
    const took = performance.now() - started;
    expect(sshd.execs()).toBe(1);
    expect(err.message).toBe('ssh: 127.0.0.1 did not start docker system dial-stdio within 300 ms');
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(5_000);
    const failure = dockerFailure(err, 'starting exec');
    expect(failure.code).toBe('ENTRY_DOCKER_UNAVAILABLE');
    expect(failure.message).toContain('starting exec: ssh: 127.0.0.1 did not start docker system dial-stdio within 300 ms');
    // No request went out: nothing the engine may have carried out needs cleaning up.
    expect(unanswered(err)).toBe(false);
  });
});

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/repo.js';

const SOCKET = process.env['DOCKER_SOCKET'] ?? '/var/run/docker.sock';

/**
 * Runs `script` as an ES module in a fresh Node beside the built broker and returns what it
 * printed as JSON: the module cache is per process, so only a process of its own shows what
 * loading the broker loads.
 */
async function probe(script: string, flags: string[] = ['--no-deprecation']): Promise<Record<string, unknown>> {
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [...flags, '--input-type=module', '-e', script], { cwd: ROOT, timeout: 30_000 });
  return { ...(JSON.parse(stdout) as Record<string, unknown>), stderr };
}

const LOADED = `
  const { createRequire } = await import('node:module');
  const cache = createRequire(import.meta.url).cache;
  const loaded = (pkg) => Object.keys(cache).some((k) => k.includes('/node_modules/' + pkg + '/'));
`;

describe('the broker loads only what it uses', () => {
  it('loads neither gRPC, ssh2 nor ioredis with the whole broker, and its Docker client still talks to the engine', async () => {
    const out = await probe(`
      ${LOADED}
      await import(${JSON.stringify(join(ROOT, 'dist/broker/broker.js'))});
      const { connectDocker } = await import(${JSON.stringify(join(ROOT, 'dist/broker/docker/engine.js'))});
      const docker = connectDocker(${JSON.stringify(`unix://${SOCKET}`)});
      const ping = String(await docker.ping());
      console.log(JSON.stringify({ grpc: loaded('@grpc/grpc-js'), protoLoader: loaded('@grpc/proto-loader'), ssh2: loaded('ssh2'), ioredis: loaded('ioredis'), dockerode: loaded('dockerode'), ping }));
    `);
    expect(out).toEqual({ grpc: false, protoLoader: false, ssh2: false, ioredis: false, dockerode: true, ping: 'OK', stderr: '' });
  });

  it('loads ssh2 when an ssh:// engine is first called, and connects to a name, an IPv4 and an IPv6 address with it, warning nothing', async () => {
    const out = await probe(
      `
      ${LOADED}
      const { connectDocker } = await import(${JSON.stringify(join(ROOT, 'dist/broker/docker/engine.js'))});
      const before = loaded('ssh2');
      const errs = [];
      for (const host of ['localhost', '127.0.0.1', '[::1]']) errs.push(await connectDocker('ssh://root@' + host + ':1').ping().then(() => null, (e) => e.code));
      console.log(JSON.stringify({ before, after: loaded('ssh2'), errs }));
    `,
      [],
    );
    // ECONNREFUSED comes from ssh2's own connect to port 1: the transport ran, for each form of host.
    expect(out).toEqual({ before: false, after: true, errs: ['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED'], stderr: '' });
  });

  it("fails clearly if dockerode ever asks for a BuildKit session or docker-modem's ssh transport", async () => {
    const out = await probe(`
      await import(${JSON.stringify(join(ROOT, 'dist/broker/docker/engine.js'))});
      const { createRequire } = await import('node:module');
      const require = createRequire(createRequire(${JSON.stringify(join(ROOT, 'package.json'))}).resolve('dockerode'));
      const messages = [];
      for (const m of ['dockerode/lib/session.js', 'docker-modem/lib/ssh.js']) {
        try { require(m)(); messages.push(null); } catch (e) { messages.push(e.message); }
      }
      console.log(JSON.stringify({ messages }));
    `);
    const [session, ssh] = out['messages'] as string[];
    expect(session).toMatch(/BuildKit sessions are not loaded/);
    expect(ssh).toMatch(/ssh transport is not loaded/);
  });
});

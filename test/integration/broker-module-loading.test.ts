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
async function probe(script: string): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--no-deprecation', '--input-type=module', '-e', script], { cwd: ROOT, timeout: 30_000 });
  return JSON.parse(stdout) as Record<string, unknown>;
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
    expect(out).toEqual({ grpc: false, protoLoader: false, ssh2: false, ioredis: false, dockerode: true, ping: 'OK' });
  });

  it('loads the ssh transport when an ssh:// engine is first called, and connects with it', async () => {
    const out = await probe(`
      ${LOADED}
      const { connectDocker } = await import(${JSON.stringify(join(ROOT, 'dist/broker/docker/engine.js'))});
      const docker = connectDocker('ssh://root@127.0.0.1:1');
      const before = loaded('ssh2');
      const err = await docker.ping().then(() => null, (e) => e.code);
      console.log(JSON.stringify({ before, after: loaded('ssh2'), err }));
    `);
    // ECONNREFUSED comes from ssh2's own connect to port 1: the real transport ran.
    expect(out).toEqual({ before: false, after: true, err: 'ECONNREFUSED' });
  });

  it('fails clearly if dockerode ever asks for a BuildKit session', async () => {
    const out = await probe(`
      await import(${JSON.stringify(join(ROOT, 'dist/broker/docker/engine.js'))});
      const { createRequire } = await import('node:module');
      const require = createRequire(${JSON.stringify(join(ROOT, 'package.json'))});
      let message = null;
      try { require('dockerode/lib/session.js')(); } catch (e) { message = e.message; }
      console.log(JSON.stringify({ message }));
    `);
    expect(out['message']).toMatch(/BuildKit sessions are not loaded/);
  });
});

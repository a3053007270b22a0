import { randomUUID } from 'node:crypto';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerExecProcess } from '../../broker/docker/exec-process.js';
import { ProcessReaper } from '../../broker/docker/process-reaper.js';
import type { EntryError } from '../../broker/errors.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually } from '../helpers/sessions.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * Between opening a Docker exec and starting the relay on it, a session awaits the session
 * store; the exec's hijacked stream can be reset meanwhile (here: the proxy in front of the
 * engine resets it). That must not be an uncaught error (the broker would exit 70): start()
 * ends the session with the reason, and the exec's process is ended.
 */
describe('an exec stream reset before the session starts', () => {
  const proxy = new TcpProxy(`unix://${process.env['DOCKER_SOCKET'] ?? '/var/run/docker.sock'}`);
  const containers = new TestContainers();
  const app = uniqueApp('er');
  let engine: Docker;
  let containerId = '';

  beforeAll(async () => {
    await proxy.start();
    engine = new Docker({ host: '127.0.0.1', port: proxy.port });
    containerId = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await proxy.stop();
    await containers.removeAll();
  });

  it('ends the session with a clear error, not an uncaught one, and ends the process', async () => {
    const p = await DockerExecProcess.open(engine, new ProcessReaper(engine, 'host'), {
      containerId,
      sessionId: randomUUID(),
      cmd: ['sleep', '1005'],
      tty: false,
      env: [],
      user: '',
      workdir: '',
      size: undefined,
      terminateGraceMs: 300,
      openTimeoutMs: 30_000,
    });
    await eventually(async () => (await containerProcesses(containerId)).some((a) => a.trim() === 'sleep 1005'), 'the command running');
    proxy.cut();
    // The reset lands while the session is busy elsewhere (a store round trip).
    await new Promise((r) => setTimeout(r, 200));
    // And one turn of the event loop's poll phase, where the reset is delivered: a timer that
    // comes due while this process was held up runs before it.
    await new Promise((r) => setImmediate(r));
    const result = await new Promise<{ exitCode: number } | { error: EntryError }>((resolve) => p.start({ output: () => undefined, drain: () => undefined, end: resolve }));
    expect('error' in result && result.error.code).toBe('ENTRY_DOCKER_UNAVAILABLE');
    expect('error' in result && result.error.message).toMatch(/stream failed before the session started: ECONNRESET/);
    await eventually(async () => !(await containerProcesses(containerId)).some((a) => a.trim() === 'sleep 1005'), 'the command ended');
    // The relay may still end it: once is enough.
    await p.terminate();
  }, 30_000);
});

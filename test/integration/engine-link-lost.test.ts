import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReapMode } from '../../broker/docker/process-reaper.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * The link between the broker and the engine breaks while a command runs (a tcp:// or ssh://
 * engine link dropping, a socket proxy's idle timeout, dockerd restarting with live-restore).
 * The exec goes on in the container without its stream: the broker must end it, as it does when
 * the client leaves, and tell the client why. Seen through a proxy in front of the engine socket.
 */

const ENGINE_SOCKET = process.env['DOCKER_SOCKET'] ?? '/var/run/docker.sock';

describe.each(['host', 'exec'] as ReapMode[])('the engine stream lost while a command runs (reap mode %s)', (mode) => {
  const containers = new TestContainers();
  const app = uniqueApp('el');
  const target = { app, proc: 'web', instance: 1 };
  const engine = new TcpProxy(`unix://${ENGINE_SOCKET}`);
  let b: TestBroker;
  let containerId = '';

  beforeAll(async () => {
    await engine.start();
    b = await startTestBroker({ 'docker-host': [`tcp://127.0.0.1:${engine.port}`], 'kill-grace': 300 }, { reapMode: mode });
    containerId = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await b?.stop();
    await containers.removeAll();
    await engine.stop();
  });

  const running = async (tag: string) => (await containerProcesses(containerId)).some((p) => p.trim() === `sleep ${tag}`);

  it.each([false, true])('ends the processes and closes the client with a reason (tty %s)', async (tty) => {
    const tag = tty ? '1021' : '1022';
    // The cut also broke the broker's event stream: wait until it has the engine again.
    await eventually(async () => (await fetch(`${b.url}/readyz`)).status === 200, 'the broker ready', 20_000);
    const c = await openCommand(b.wsUrl, await b.mint({ apps: [app] }), target, ['sh', '-c', `echo READY; sleep ${tag}`], tty);
    await c.waitFor(() => c.stdoutText().includes('READY'), 'READY');
    await eventually(() => running(tag), `sleep ${tag} running`);

    engine.cut();
    await c.closed;
    const close = c.closeMessage();
    expect(close, 'a CLOSE message').toBeDefined();
    // The engine answered again at once (the exec still running, no exit code): the stream was
    // lost. Had it not answered, the engine is unreachable; either way the CLOSE says which.
    expect(['ENTRY_STREAM_LOST', 'ENTRY_DOCKER_UNAVAILABLE']).toContain(close!.code);
    expect(new TextDecoder().decode(close!.content)).toMatch(/lost the stream to the process while it ran|docker engine unreachable/);
    // The exec outlived its stream; the session's end ended it. Checked on the engine's own socket.
    await eventually(async () => !(await running(tag)), `sleep ${tag} ended`, 15_000);
    expect(b.logs.filter((l) => l.includes('could not end the session processes'))).toEqual([]);
  }, 40_000);

  it('ends the processes once the engine answers again, when the link stays down for a while', async () => {
    const tag = '1023';
    await eventually(async () => (await fetch(`${b.url}/readyz`)).status === 200, 'the broker ready', 20_000);
    const c = await openCommand(b.wsUrl, await b.mint({ apps: [app] }), target, ['sh', '-c', `echo READY; sleep ${tag}`]);
    await c.waitFor(() => c.stdoutText().includes('READY'), 'READY');
    await eventually(() => running(tag), `sleep ${tag} running`);
    // Three seconds in which every connection to the engine is refused, the clean-up's included.
    engine.cut(3_000);
    await c.closed;
    expect(['ENTRY_STREAM_LOST', 'ENTRY_DOCKER_UNAVAILABLE']).toContain(c.closeMessage()?.code);
    await eventually(async () => !(await running(tag)), `sleep ${tag} ended`, 30_000);
  }, 60_000);
});

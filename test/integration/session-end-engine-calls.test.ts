import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * The engine calls a session's end makes. Ending a session needs its exec's host PID; a session
 * that has lasted a second has learned it already, so when every client vanishes at once (a
 * load balancer restart) the clean-up makes no engine call per session. Seen through a proxy in
 * front of the engine's socket that counts the exec inspections (`GET /exec/<id>/json`).
 */

const ENGINE_SOCKET = process.env['DOCKER_SOCKET'] ?? '/var/run/docker.sock';
const EXEC_INSPECT = /GET \/(?:v[\d.]+\/)?exec\/[0-9a-f]+\/json HTTP\/1\.1\r\n/g;

describe('ending a session', () => {
  const containers = new TestContainers();
  const app = uniqueApp('ee');
  const target = { app, proc: 'web', instance: 1 };
  let b: TestBroker;
  const engine = new TcpProxy(`unix://${ENGINE_SOCKET}`);
  let inspections = 0;
  let containerId = '';

  beforeAll(async () => {
    engine.tap = (chunk) => (inspections += chunk.toString('latin1').match(EXEC_INSPECT)?.length ?? 0);
    await engine.start();
    b = await startTestBroker({ 'docker-host': [`tcp://127.0.0.1:${engine.port}`], 'kill-grace': 300 });
    containerId = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await b?.stop();
    await containers.removeAll();
    await engine.stop();
  });

  async function openHeld(tag: string) {
    const c = await openCommand(b.wsUrl, await b.mint({ apps: [app] }), target, ['sh', '-c', `echo READY; sleep ${tag}`], true);
    await c.waitFor(() => c.stdoutText().includes('READY'), 'READY');
    await eventually(async () => (await containerProcesses(containerId)).some((p) => p.trim() === `sleep ${tag}`), `sleep ${tag} running`);
    return c;
  }
  const gone = (tag: string) => eventually(async () => (await containerProcesses(containerId)).every((p) => p.trim() !== `sleep ${tag}`), `sleep ${tag} ended`);

  it('asks the engine nothing per session once the session has lasted a second', async () => {
    const before = inspections;
    const c = await openHeld('1011');
    // The lookup made a second after the start: the event that the session knows its PID.
    await eventually(async () => inspections > before, 'the exec inspected while the session runs', 5_000);
    const atDrop = inspections;
    c.ws.terminate();
    await gone('1011');
    expect(inspections).toBe(atDrop);
  });
});

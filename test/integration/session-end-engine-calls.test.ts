import { connect, createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';

/**
 * The engine calls a session's end makes. Ending a session needs its exec's host PID; a session
 * that has lasted a second has learned it already, so when every client vanishes at once (a
 * load balancer restart) the clean-up makes no engine call per session. Seen through a proxy in
 * front of the engine's socket that counts the exec inspections (`GET /exec/<id>/json`).
 */

const ENGINE_SOCKET = process.env['DOCKER_SOCKET'] ?? '/var/run/docker.sock';
const EXEC_INSPECT = /GET \/(?:v[\d.]+\/)?exec\/[0-9a-f]+\/json HTTP\/1\.1\r\n/g;

/** A loopback TCP front for the engine's unix socket, counting exec inspections in what passes. */
async function countingEngineProxy(): Promise<{ server: Server; port: number; inspections: () => number }> {
  let inspections = 0;
  const server = createServer((client) => {
    const engine = connect(ENGINE_SOCKET);
    client.on('data', (chunk: Buffer) => {
      inspections += chunk.toString('latin1').match(EXEC_INSPECT)?.length ?? 0;
    });
    for (const s of [client, engine]) s.on('error', () => undefined);
    client.pipe(engine);
    engine.pipe(client);
    client.on('close', () => engine.destroy());
    engine.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, inspections: () => inspections };
}

describe('ending a session', () => {
  const containers = new TestContainers();
  const app = uniqueApp('ee');
  const target = { app, proc: 'web', instance: 1 };
  let b: TestBroker;
  let engine: Awaited<ReturnType<typeof countingEngineProxy>>;
  let containerId = '';

  beforeAll(async () => {
    engine = await countingEngineProxy();
    b = await startTestBroker({ 'docker-host': [`tcp://127.0.0.1:${engine.port}`], 'kill-grace': 300 });
    containerId = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await b?.stop();
    await containers.removeAll();
    await new Promise((r) => engine?.server.close(r));
  });

  async function openHeld(tag: string) {
    const c = await openCommand(b.wsUrl, await b.mint({ apps: [app] }), target, ['sh', '-c', `echo READY; sleep ${tag}`], true);
    await c.waitFor(() => c.stdoutText().includes('READY'), 'READY');
    await eventually(async () => (await containerProcesses(containerId)).some((p) => p.trim() === `sleep ${tag}`), `sleep ${tag} running`);
    return c;
  }
  const gone = (tag: string) => eventually(async () => (await containerProcesses(containerId)).every((p) => p.trim() !== `sleep ${tag}`), `sleep ${tag} ended`);

  it('asks the engine nothing per session once the session has lasted a second', async () => {
    const before = engine.inspections();
    const c = await openHeld('1011');
    // The lookup made a second after the start: the event that the session knows its PID.
    await eventually(async () => engine.inspections() > before, 'the exec inspected while the session runs', 5_000);
    const atDrop = engine.inspections();
    c.ws.terminate();
    await gone('1011');
    expect(engine.inspections()).toBe(atDrop);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { uniqueApp } from '../helpers/containers.js';
import { TestEngine } from '../helpers/engine.js';
import { eventually, openCommand } from '../helpers/sessions.js';

/** A Docker engine of the test's own, stopped and started again under a live broker. */
describe('the Docker engine restarting under the broker', () => {
  const engine = new TestEngine();
  const app = uniqueApp();
  let b: TestBroker;

  beforeAll(async () => {
    await engine.start();
    engine.loadImage('entry-demo:latest');
    await engine.containers.start({ labels: { 'entry.app': app, 'entry.proc': 'web', 'entry.instance': '1' }, restart: true });
    b = await startTestBroker({ 'docker-host': engine.host });
  }, 120_000);
  afterAll(async () => {
    await b?.stop();
    await engine.destroy();
  }, 120_000);

  const readyz = async () => (await fetch(`${b.url}/readyz`)).status;

  it('ends live sessions with a reason, reports not ready, and serves again once the engine is back', async () => {
    const token = await b.mint({ apps: [app] });
    const target = { app, proc: 'web', instance: 1 };
    expect(await readyz()).toBe(200);
    const live = await openCommand(b.wsUrl, token, target, ['sh', '-c', 'echo up; sleep 1000']);
    await live.waitFor(() => live.stdoutText() === 'up\n', 'the session');

    await engine.stop();
    await live.closed;
    const reason = live.closeMessage()!;
    expect(['ENTRY_CONTAINER_GONE', 'ENTRY_DOCKER_UNAVAILABLE']).toContain(reason.code);
    expect(await readyz()).toBe(503);
    // While the engine is down a new session is refused at once, with the reason.
    const t0 = Date.now();
    const refused = await openCommand(b.wsUrl, token, target, ['true']);
    await refused.closed;
    expect(refused.closeMessage()!.code).toBe('ENTRY_DOCKER_UNAVAILABLE');
    expect(Date.now() - t0).toBeLessThan(2000);

    await engine.start();
    await eventually(async () => (await readyz()) === 200, '/readyz to recover', 30_000);
    await eventually(async () => (await engine.docker.listContainers()).length === 1, 'the container to restart', 30_000);
    const again = await openCommand(b.wsUrl, token, target, ['echo', 'back']);
    await again.closed;
    expect(again.stdoutText()).toBe('back\n');
  }, 120_000);
});

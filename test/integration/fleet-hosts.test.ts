import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_INDEX_TIMING } from '../../broker/docker/container-index.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { TestEngine } from '../helpers/engine.js';
import { eventually, openCommand } from '../helpers/sessions.js';

/**
 * Two Docker engines under one broker: the machine's (host "a") and one of the test's own
 * (host "b"). The broker keeps an index of each from its event stream.
 *
 * Times are bounded against what they rule out, with room for a loaded machine: a host found
 * down in well under the ping interval was found by its event stream ending, not by the ping;
 * a refusal in well under the request timeout did not wait on the dead engine.
 */
const { pingIntervalMs, requestTimeoutMs } = DEFAULT_INDEX_TIMING;
describe('a fleet of two Docker hosts', () => {
  const engine = new TestEngine();
  const containers = new TestContainers();
  const app = uniqueApp('fl');
  const bIds: string[] = [];
  let b: TestBroker;
  let token: string;
  let aWeb1 = '';

  async function onB(labels: Record<string, string>, opts: { start?: boolean; restart?: boolean } = {}): Promise<string> {
    const id = await engine.containers.start({ labels, stopped: opts.start === false, restart: opts.restart === true });
    bIds.push(id);
    return id;
  }
  const entry = (proc: string, instance: number) => ({ 'entry.app': app, 'entry.proc': proc, 'entry.instance': String(instance) });

  /** Runs `hostname` (the container's short id) in a target; the CLOSE code when refused. */
  async function where(proc: string, instance: number): Promise<{ id?: string; code?: string; message?: string; ms: number }> {
    const t0 = performance.now();
    const s = await openCommand(b.wsUrl, token, { app, proc, instance }, ['hostname']);
    await s.closed;
    const ms = performance.now() - t0;
    const close = s.closeMessage();
    if (close?.code) return { code: close.code, message: new TextDecoder().decode(close.content), ms };
    return { id: s.stdoutText().trim(), ms };
  }

  beforeAll(async () => {
    await engine.start();
    engine.loadImage('entry-demo:latest');
    aWeb1 = await containers.entry(app, 'web', 1);
    await containers.entry(app, 'twin', 1);
    await onB(entry('web', 2), { restart: true });
    await onB(entry('twin', 1));
    b = await startTestBroker({ 'docker-host': ['a=unix:///var/run/docker.sock', `b=${engine.host}`] });
    token = await b.mint({ apps: [app] });
  }, 120_000);
  afterAll(async () => {
    await b?.stop();
    await containers.removeAll();
    await engine.destroy();
  }, 120_000);

  const readyz = async () => {
    const res = await fetch(`${b.url}/readyz`);
    return { status: res.status, body: (await res.json()) as { docker: boolean; hosts: Record<string, boolean> } };
  };
  const listed = async () => {
    const res = await fetch(`${b.url}/api/containers`, { headers: { authorization: `Bearer ${token}` } });
    return ((await res.json()) as { containers: Array<{ app: string; proc: string; instance: string; host: string; state: string; name: string }> }).containers;
  };

  it('resolves targets on each host to the right container, and lists them with their host', async () => {
    const one = await where('web', 1);
    expect(one.id).toBe(aWeb1.slice(0, 12));
    const two = await where('web', 2);
    expect(two.id).toBe(bIds[0]!.slice(0, 12));
    const list = await listed();
    expect(list.filter((c) => c.app === app).map((c) => `${c.proc}/${c.instance}@${c.host}`).sort()).toEqual(['twin/1@a', 'twin/1@b', 'web/1@a', 'web/2@b']);
    expect((await readyz()).body.hosts).toEqual({ a: true, b: true });
  });

  it('says ambiguous, naming both hosts, when the same target runs on both', async () => {
    const r = await where('twin', 1);
    expect(r.code).toBe('ENTRY_AMBIGUOUS');
    expect(r.message).toMatch(/ on a/);
    expect(r.message).toMatch(/ on b/);
  });

  it('follows a container started while the broker runs from the event stream, without listing the host again', async () => {
    // Each full listing of a host logs "docker host up"; following events logs nothing.
    const listings = () => b.logs.filter((l) => l.includes('"docker host up"')).length;
    const listedBefore = listings();
    const t0 = performance.now();
    const id = await onB(entry('late', 3));
    const startedMs = performance.now() - t0;
    // /api/containers reads only the index: no listing behind it.
    const seenMs = await eventually(async () => (await listed()).some((c) => c.app === app && c.proc === 'late' && c.state === 'running'), 'the new container in the index');
    console.log(`fleet: container started (${startedMs.toFixed(0)} ms), in the index ${seenMs} ms after`);
    const r = await where('late', 3);
    expect(r.id).toBe(id.slice(0, 12));
    // A rename and a removal follow too.
    await engine.docker.getContainer(id).rename({ name: `${app}-renamed` });
    await eventually(async () => (await listed()).some((c) => c.name === `${app}-renamed`), 'the rename');
    await engine.docker.getContainer(id).remove({ force: true });
    await eventually(async () => !(await listed()).some((c) => c.proc === 'late'), 'the removal');
    expect(listings()).toBe(listedBefore);
  });

  it('gives a stopped host\'s targets the unreachable reason at once, and brings them back when it returns', async () => {
    await engine.stop();
    const t0 = performance.now();
    let refused: Awaited<ReturnType<typeof where>> | undefined;
    for (;;) {
      refused = await where('web', 2);
      if (refused.code === 'ENTRY_DOCKER_UNAVAILABLE' || performance.now() - t0 > 2 * pingIntervalMs) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const unreachableMs = performance.now() - t0;
    console.log(`fleet: host b stopped → its target unreachable after ${unreachableMs.toFixed(0)} ms (answer in ${refused.ms.toFixed(0)} ms)`);
    expect(refused.code).toBe('ENTRY_DOCKER_UNAVAILABLE');
    expect(refused.message).toContain('docker host b unreachable');
    expect(unreachableMs).toBeLessThan(pingIntervalMs / 2);
    expect(refused.ms).toBeLessThan(requestTimeoutMs / 2);
    // The other host keeps working, and the broker stays ready on it.
    expect((await where('web', 1)).id).toBe(aWeb1.slice(0, 12));
    const ready = await readyz();
    expect(ready.status).toBe(200);
    expect(ready.body.hosts).toEqual({ a: true, b: false });

    await engine.start();
    const backMs = await eventually(async () => (await readyz()).body.hosts['b'] === true, 'host b to reconnect', 30_000);
    await eventually(async () => (await engine.docker.listContainers()).length >= 1, 'the container with a restart policy', 30_000);
    await eventually(async () => (await where('web', 2)).id === bIds[0]!.slice(0, 12), 'web/2 to be enterable again', 10_000);
    console.log(`fleet: host b back → reconnected and resynced ${backMs} ms after its engine answered`);
  }, 90_000);

  it('answers /readyz 503 when no host is reachable', async () => {
    const solo = new TestEngine();
    await solo.start();
    const lone = await startTestBroker({ 'docker-host': `only=${solo.host}` });
    try {
      expect((await fetch(`${lone.url}/readyz`)).status).toBe(200);
      await solo.stop();
      await eventually(async () => (await fetch(`${lone.url}/readyz`)).status === 503, '/readyz to flip', pingIntervalMs / 2);
      const body = (await (await fetch(`${lone.url}/readyz`)).json()) as { status: string; hosts: Record<string, boolean> };
      expect(body.status).toBe('docker engine unreachable');
      expect(body.hosts).toEqual({ only: false });
    } finally {
      await lone.stop();
      await solo.destroy();
    }
  }, 60_000);
});



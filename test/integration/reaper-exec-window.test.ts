import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import type { WireClient } from '../helpers/wire-client.js';

/**
 * A process inside an execve reads as having no environment for a moment, and so no session
 * mark. Each session here runs a shell that replaces itself with a new shell over and over, so
 * its process is in that moment for about a fifth of the time: a clean-up that took the empty
 * environment for an answer missed about one session in five, and left it running for good.
 */

const SESSIONS = 12;

describe('host reap mode and processes inside an execve', () => {
  const containers = new TestContainers();
  const app = uniqueApp('rx');
  const target = { app, proc: 'web', instance: 1 };
  let b: TestBroker;
  let containerId = '';

  beforeAll(async () => {
    b = await startTestBroker({ 'kill-grace': 300 }, { reapMode: 'host' });
    containerId = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await b?.stop();
    await containers.removeAll();
  });

  it(`ends all ${SESSIONS} sessions whose process execs in a loop when their clients drop`, async () => {
    const loop = 'exec /bin/sh -c "$0" "$0"';
    // Counted, not matched by command line: inside an exec a process shows none.
    const others = (await containerProcesses(containerId)).length;
    const looping = async () => (await containerProcesses(containerId)).length - others;
    const token = await b.mint({ apps: [app] });
    const clients: WireClient[] = await Promise.all(Array.from({ length: SESSIONS }, () => openCommand(b.wsUrl, token, target, ['/bin/sh', '-c', loop, loop])));
    await eventually(async () => (await looping()) === SESSIONS, 'every session to be looping', 10_000);
    for (const c of clients) c.ws.terminate();
    await eventually(async () => (await looping()) === 0, 'every looping process to be ended', 20_000).catch(() => undefined);
    expect(await looping(), 'processes left running after their sessions ended').toBe(0);
    await eventually(async () => b.logs.filter((l) => l.includes('"msg":"session end"')).length === SESSIONS, 'every session end');
  }, 60_000);
});

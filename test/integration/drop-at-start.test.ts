import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';

/**
 * A client that goes away within milliseconds of asking for its command ends its session
 * before the engine has spawned the command's process: the exec is started, but its process
 * is not there yet for the clean-up to find, and appears a moment later. It must be ended all
 * the same, whenever in that window the client left.
 */

/** Milliseconds between sending START and dropping the connection, one session each. */
const DROP_AFTER_MS = [0, 0, 2, 5, 5, 10, 15, 20, 30, 40, 60, 80];

describe('a client that drops as its command starts', () => {
  const containers = new TestContainers();
  const app = uniqueApp('ds');
  const target = { app, proc: 'web', instance: 1 };
  let b: TestBroker;
  let containerId = '';

  beforeAll(async () => {
    b = await startTestBroker({ 'kill-grace': 300 });
    containerId = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await b?.stop();
    await containers.removeAll();
  });

  it(`leaves none of ${DROP_AFTER_MS.length} commands running, with or without a TTY`, async () => {
    const token = await b.mint({ apps: [app] });
    const sleepers = async () => (await containerProcesses(containerId)).filter((args) => args.includes('sleep 1007')).length;
    await Promise.all(
      DROP_AFTER_MS.map(async (ms, i) => {
        const c = await openCommand(b.wsUrl, token, target, ['sleep', '1007'], i % 2 === 1);
        if (ms > 0) await sleep(ms);
        c.ws.terminate();
      }),
    );
    // A session leaves the broker's table once its clean-up is over: then nothing of it may run.
    await eventually(async () => b.broker.sessionCount === 0, 'every session and its clean-up to end', 30_000);
    expect(await sleepers(), 'commands left running after their clients dropped').toBe(0);
  }, 60_000);
});

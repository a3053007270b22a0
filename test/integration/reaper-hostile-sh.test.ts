import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXEC_SCAN_TIMEOUT_MS } from '../../broker/docker/exec-scan.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { containerProcesses, docker, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import type { WireClient } from '../helpers/wire-client.js';

/**
 * Exec reap mode runs the container's own /bin/sh, which root in the container may have
 * replaced. One that never exits must hold a clean-up slot (8 per host) for at most
 * EXEC_SCAN_TIMEOUT_MS, so more sessions than slots still get their CLOSE and a healthy
 * container's clean-up behind them still happens; one that prints forever must be cut off at
 * the output cap instead of filling the broker's memory. Sessions end by --max-session, so the
 * client is still there to receive the CLOSE that Relay.end sends after terminate().
 */

/** Scan slots per host (SCAN_CONCURRENCY), plus one that has to wait for a slot. */
const HANGING_SESSIONS = 9;
const MAX_SESSION_MS = 2_000;

async function replaceSh(containerId: string, body: string): Promise<void> {
  const exec = await docker.getContainer(containerId).exec({ Cmd: ['/bin/bash', '-c', `rm /bin/sh && printf '#!/bin/bash\\n${body}\\n' > /bin/sh && chmod 755 /bin/sh`], User: '0' });
  await exec.start({ Detach: true });
  await eventually(async () => (await exec.inspect()).ExitCode === 0, '/bin/sh replaced');
}

describe('exec reap mode with a hostile /bin/sh', () => {
  const containers = new TestContainers();
  const app = uniqueApp('rh');
  let b: TestBroker;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    b = await startTestBroker({ 'kill-grace': 300, 'max-session': MAX_SESSION_MS }, { reapMode: 'exec' });
    ids['hang'] = await containers.entry(app, 'hang', 1);
    ids['flood'] = await containers.entry(app, 'flood', 1);
    ids['good'] = await containers.entry(app, 'good', 1);
    await replaceSh(ids['hang']!, 'exec sleep 7777');
    await replaceSh(ids['flood']!, 'exec yes entry-flood');
  });
  afterAll(async () => {
    await b?.stop();
    await containers.removeAll();
  });

  const running = async (id: string, args: string) => (await containerProcesses(id)).filter((p) => p.trim() === args).length;

  it('abandons a scan that prints forever at the output cap, and kills it', async () => {
    const c = await openCommand(b.wsUrl, await b.mint({ apps: [app] }), { app, proc: 'flood', instance: 1 }, ['sleep', '1001']);
    await c.closed;
    expect(c.closeMessage()?.code).toBe('ENTRY_MAX_DURATION');
    await eventually(async () => b.logs.some((l) => l.includes('could not end the session processes') && l.includes('wrote more than 1048576 bytes')), 'the warning');
    // The helper itself is killed: the broker sees the engine's processes here.
    await eventually(async () => (await running(ids['flood']!, 'yes entry-flood')) === 0, 'the helper gone');
  }, 30_000);

  it(`never holds a clean-up slot longer than ${EXEC_SCAN_TIMEOUT_MS} ms for a /bin/sh that never exits`, async () => {
    const token = await b.mint({ apps: [app] });
    const t0 = Date.now();
    const hanging: WireClient[] = await Promise.all(Array.from({ length: HANGING_SESSIONS }, () => openCommand(b.wsUrl, token, { app, proc: 'hang', instance: 1 }, ['sleep', '1002'])));
    // Last in the queue for a slot: behind every hanging one.
    const good = await openCommand(b.wsUrl, token, { app, proc: 'good', instance: 1 }, ['sleep', '1003']);
    await eventually(async () => (await running(ids['good']!, 'sleep 1003')) === 1, 'the healthy session running');
    // The hanging sessions share scans (two at a time at most, each abandoned at the timeout) and
    // leave the other slots to the healthy container: two rounds of the timeout at most.
    const bound = MAX_SESSION_MS + 2 * EXEC_SCAN_TIMEOUT_MS + 10_000;
    await Promise.all([...hanging, good].map((c) => c.closed));
    const ms = Date.now() - t0;
    console.log(`reaper-hostile-sh: ${HANGING_SESSIONS} hanging clean-ups and a healthy one closed ${ms} ms after the start (bound ${bound} ms)`);
    expect(ms).toBeLessThan(bound);
    for (const c of [...hanging, good]) expect(c.closeMessage()?.code).toBe('ENTRY_MAX_DURATION');
    expect(await running(ids['good']!, 'sleep 1003')).toBe(0);
    // The sessions' own ends only: the ledger's minute sweep tries the same scans again, and says so in lines of its own.
    expect(b.logs.filter((l) => l.includes('could not end the session processes') && l.includes(`gave no answer within ${EXEC_SCAN_TIMEOUT_MS} ms`)).length).toBe(HANGING_SESSIONS);
    await eventually(async () => (await running(ids['hang']!, 'sleep 7777')) === 0, 'the helpers killed');
  }, 60_000);
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { containerProcesses, docker, execCreateCount, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import type { WireClient } from '../helpers/wire-client.js';

/**
 * Ending a session's leftovers in a container that starts and ends processes all the time: the
 * exec-mode scan meets processes that exit under it (its own `tr` and `grep` among them) and
 * must still end every marked one and report a count. 50 sessions, each a shell with a child,
 * dropped ten at a time: `docker top` must show none of them after, and the broker must never
 * say it could not end them. Host mode runs the same, for the reap time beside it.
 */

const SESSIONS = 50;
const BATCH = 10;
/** About 60 short-lived processes a second, none of them a session's; light on the CPU the other suites share. */
const CHURN = "while :; do for i in 1 2 3 4; do sh -c 'sleep 0.05' & done; wait; done";

const isLeftover = (args: string) => /^sleep 100[12]$/.test(args.trim());

for (const mode of ['exec', 'host'] as const) {
  describe(`${mode} reap mode in a busy container`, () => {
    const containers = new TestContainers();
    const app = uniqueApp('rb');
    const target = { app, proc: 'web', instance: 1 };
    let b: TestBroker;
    let containerId = '';

    beforeAll(async () => {
      b = await startTestBroker({ 'kill-grace': 300 }, { reapMode: mode });
      containerId = await containers.entry(app, 'web', 1);
      const churn = await docker.getContainer(containerId).exec({ Cmd: ['sh', '-c', CHURN], AttachStdout: false, AttachStderr: false });
      await churn.start({ Detach: true });
    });
    afterAll(async () => {
      await b?.stop();
      await containers.removeAll();
    });

    it(`leaves 0 processes behind over ${SESSIONS} dropped sessions`, async () => {
      const token = await b.mint({ apps: [app] });
      const reapMs: number[] = [];
      let leftovers = 0;
      for (let start = 0; start < SESSIONS; start += BATCH) {
        const clients: WireClient[] = await Promise.all(
          Array.from({ length: BATCH }, async () => {
            const c = await openCommand(b.wsUrl, token, target, ['sh', '-c', 'sleep 1002 & echo READY; exec sleep 1001']);
            await c.waitFor(() => c.stdoutText().includes('READY'), 'READY');
            return c;
          }),
        );
        // READY comes just before `exec sleep 1001` replaces the shell: wait for both sleeps.
        await eventually(async () => (await containerProcesses(containerId)).filter(isLeftover).length === 2 * BATCH, 'the sessions to run two sleeps each', 10_000);
        for (const c of clients) c.ws.terminate();
        reapMs.push(await eventually(async () => (await containerProcesses(containerId)).every((p) => !isLeftover(p)), 'the batch reaped', 20_000));
        leftovers += (await containerProcesses(containerId)).filter(isLeftover).length;
      }
      // Every session's end was logged, and none said its processes could not be ended.
      await eventually(async () => b.logs.filter((l) => l.includes('"msg":"session end"')).length === SESSIONS, 'every session end');
      expect(b.logs.filter((l) => l.includes('could not end the session processes'))).toEqual([]);
      expect(leftovers).toBe(0);
      // The churn itself went on all along: the container really was busy.
      const top = await containerProcesses(containerId);
      expect(top.some((p) => p.includes('while :'))).toBe(true);
      reapMs.sort((x, y) => x - y);
      console.log(`reaper-busy ${mode}: ${SESSIONS} sessions in batches of ${BATCH}, 0 leftovers; batch reaped (drop → docker top clean) median ${reapMs[Math.floor(reapMs.length / 2)]} ms, max ${reapMs.at(-1)} ms`);
    }, 180_000);
  });
}

describe('auto reap mode', () => {
  const containers = new TestContainers();
  const app = uniqueApp('ra');
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

  it("scans /proc itself when the session's first process is gone and its children live on", async () => {
    // The shell exits; its child keeps the stream open. The exec's own PID is gone, the
    // container's init is still visible from here: host mode, no exec into the container.
    const c = await openCommand(b.wsUrl, await b.mint({ apps: [app] }), { app, proc: 'web', instance: 1 }, ['sh', '-c', 'sleep 1003 & echo READY; exit 0']);
    await c.waitFor(() => c.stdoutText().includes('READY'), 'READY');
    await eventually(async () => (await containerProcesses(containerId)).some((p) => p.trim() === 'sleep 1003'), 'the orphan running');
    const since = Date.now();
    c.ws.terminate();
    await eventually(async () => (await containerProcesses(containerId)).every((p) => p.trim() !== 'sleep 1003'), 'the orphan ended');
    expect(await execCreateCount(containerId, since)).toBe(0);
  });
});

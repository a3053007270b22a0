import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestType } from '../../proto/codec.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { containerProcesses, execCreateCount, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';

/**
 * A client sending SIGNAL as fast as it can. In exec reap mode every delivery is an exec in the
 * container, and deliveries once waited in the queue that also ends sessions: a flood made the
 * engine run one exec per message and left other sessions' processes running meanwhile. A
 * session now has one delivery in flight at a time (repeats of a waiting signal absorbed), in a
 * lane of its own beside the clean-up.
 */

const FLOOD = 500;
/**
 * The other session's clean-up is a few execs in the container (the signal, then whether its
 * processes are gone); queued behind the flood's deliveries, one exec each, it took minutes.
 */
const CLEAN_UP_LIMIT_MS = 10_000;

describe('a flood of signals from one session', () => {
  const containers = new TestContainers();
  const app = uniqueApp('sf');
  const target = { app, proc: 'web', instance: 1 };
  let b: TestBroker;
  let containerId = '';

  beforeAll(async () => {
    b = await startTestBroker({ 'kill-grace': 300 }, { reapMode: 'exec' });
    containerId = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await b?.stop();
    await containers.removeAll();
  });

  it("is delivered one exec at a time, still gets its last signal through, and does not hold up another session's clean-up", async () => {
    const token = await b.mint({ apps: [app] });
    const flooder = await openCommand(b.wsUrl, token, target, ['sh', '-c', 'trap "echo GOT-USR1" USR1; echo READY; while :; do sleep 0.2; done']);
    const other = await openCommand(b.wsUrl, token, target, ['sh', '-c', 'echo READY; exec sleep 1041']);
    await flooder.waitFor(() => flooder.stdoutText().includes('READY'), 'READY');
    await other.waitFor(() => other.stdoutText().includes('READY'), 'READY');
    await eventually(async () => (await containerProcesses(containerId)).some((p) => p.trim() === 'sleep 1041'), 'sleep 1041 running');

    const since = Date.now();
    for (let i = 0; i < FLOOD; i++) {
      flooder.send(RequestType.SIGNAL, 'WINCH');
      flooder.send(RequestType.SIGNAL, 'USR1');
    }
    other.ws.terminate();
    const reapMs = await eventually(async () => (await containerProcesses(containerId)).every((p) => p.trim() !== 'sleep 1041'), "the other session's processes ended", CLEAN_UP_LIMIT_MS);
    await flooder.waitFor(() => flooder.stdoutText().includes('GOT-USR1'), 'the USR1 trap');
    // Let whatever deliveries the flood left run out before counting the engine's execs.
    await new Promise((r) => setTimeout(r, 1_500));
    const execs = await execCreateCount(containerId, since);
    console.log(`signal flood: ${2 * FLOOD} SIGNAL messages, ${execs} execs in the container (the other session's clean-up included), its processes ended after ${reapMs} ms`);
    // A handful for the flood (one in flight, WINCH and USR1 waiting), a few for the other session's end.
    expect(execs).toBeLessThanOrEqual(15);
    expect(reapMs).toBeLessThan(CLEAN_UP_LIMIT_MS);
    expect(flooder.stdoutText().match(/GOT-USR1/g)!.length).toBeLessThanOrEqual(3);
    flooder.ws.close();
    await flooder.closed;
  }, 60_000);
});

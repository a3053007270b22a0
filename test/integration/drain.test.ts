import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startBrokerProcess } from '../helpers/broker-process.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';

describe('SIGTERM: graceful drain', () => {
  const containers = new TestContainers();
  const app = uniqueApp();
  let id: string;

  beforeAll(async () => {
    id = await containers.entry(app, 'web', 1);
  });
  afterAll(() => containers.removeAll());

  it('tells every client why, ends their processes and exits 0 in time', async () => {
    // A drain that waits for its timeout takes 20 s and exits 1; one that ends when its sessions
    // have, well under that however slow the engine's clean-up calls are on a loaded machine.
    const b = await startBrokerProcess(['--kill-grace', '300', '--drain-timeout', '20000']);
    onTestFinished(() => b.stop());
    const token = await b.mint({ apps: [app] });
    const target = { app, proc: 'web', instance: 1 };
    const clients = await Promise.all([1, 2, 3].map((i) => openCommand(b.wsUrl, token, target, ['sh', '-c', `echo ready; sleep 200${i}`])));
    const shell = await openCommand(b.wsUrl, token, target, [], true);
    shell.send(0, 'echo SHELL\r');
    for (const c of clients) await c.waitFor(() => c.stdoutText() === 'ready\n', 'ready');
    await shell.waitFor(() => shell.stdoutText().includes('SHELL\r\n'), 'the shell');

    const t0 = Date.now();
    b.child.kill('SIGTERM');
    const code = await b.exited;
    const ms = Date.now() - t0;
    console.log(`drain: 4 sessions closed and broker exited in ${ms} ms`);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(15_000);
    for (const c of [...clients, shell]) {
      const closed = await c.closed;
      expect(closed.code).toBe(1001);
      expect(c.closeMessage()!.code).toBe('ENTRY_DRAINING');
      expect(new TextDecoder().decode(c.closeMessage()!.content)).toMatch(/broker is shutting down/);
    }
    await eventually(async () => (await containerProcesses(id)).every((p) => !/sleep 200[123]|bash/.test(p)), 'no leftovers');
  });

  it('exits 0 with --drain-timeout 0 when no session is open, and 1 with a line saying so when one is', async () => {
    const idle = await startBrokerProcess(['--drain-timeout', '0']);
    onTestFinished(() => idle.stop());
    idle.child.kill('SIGTERM');
    expect(await idle.exited).toBe(0);
    const busy = await startBrokerProcess(['--drain-timeout', '0', '--kill-grace', '300']);
    onTestFinished(() => busy.stop());
    const c = await openCommand(busy.wsUrl, await busy.mint({ apps: [app] }), { app, proc: 'web', instance: 1 }, ['sh', '-c', 'echo ready; sleep 2004']);
    await c.waitFor(() => c.stdoutText() === 'ready\n', 'ready');
    busy.child.kill('SIGTERM');
    expect(await busy.exited).toBe(1);
    expect(busy.logs.some((l) => l.includes('drain timed out: exiting with sessions open'))).toBe(true);
    // Its client is told before the exit, and that the processes are left for later. Its command
    // is left to the ledger, for the next broker on this state dir to end; this one's goes with
    // the container.
    expect((await c.closed).code).toBe(1001);
    expect(c.closeMessage()?.code).toBe('ENTRY_DRAINING');
    expect(new TextDecoder().decode(c.closeMessage()!.content)).toMatch(/broker is shutting down: the broker exits before this session's processes are ended/);
  });

  it('exits at once on a second SIGTERM, saying the drain was cut short', async () => {
    // A process that ignores SIGHUP holds the drain for the kill grace (10 s).
    const b = await startBrokerProcess(['--kill-grace', '10000', '--drain-timeout', '30000']);
    onTestFinished(() => b.stop());
    const c = await openCommand(b.wsUrl, await b.mint({ apps: [app] }), { app, proc: 'web', instance: 1 }, ['sh', '-c', "trap '' HUP; echo ready; sleep 2005"]);
    await c.waitFor(() => c.stdoutText() === 'ready\n', 'ready');
    b.child.kill('SIGTERM');
    await eventually(async () => b.logs.some((l) => l.includes('"msg":"draining"')), 'the drain to start');
    const again = Date.now();
    b.child.kill('SIGTERM');
    expect(await b.exited).toBe(1);
    expect(Date.now() - again).toBeLessThan(5_000);
    expect(b.logs.some((l) => l.includes('drain cut short by a second signal'))).toBe(true);
    // Told, rather than left with a connection that drops without a word.
    expect((await c.closed).code).toBe(1001);
    expect(c.closeMessage()?.code).toBe('ENTRY_DRAINING');
  });
});

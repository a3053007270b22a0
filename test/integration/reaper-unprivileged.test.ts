import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestType } from '../../proto/codec.js';
import { BrokerProcess } from '../helpers/broker-process.js';
import { containerProcesses, docker, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';

/**
 * A broker running as a user of its own (the systemd unit's `User=entry`): it sees the engine's
 * processes in /proc, but a root process's environment (where the session mark is) is not its
 * to read, nor the process its to signal. It must end a session's processes all the same.
 */
describe('a broker that may not read or signal the engine’s processes', () => {
  const containers = new TestContainers();
  const app = uniqueApp('np');
  const target = { app, proc: 'web', instance: 1 };
  let b: BrokerProcess | undefined;
  let id = '';

  beforeAll(async () => {
    id = await containers.entry(app, 'web', 1);
    b = await BrokerProcess.start({ unprivileged: true, flags: ['--kill-grace', '300'] });
  });
  afterAll(async () => {
    await b?.stop();
    await containers.removeAll();
  });

  const running = async (tag: string) => (await containerProcesses(id)).some((p) => p.includes(`sleep ${tag}`));

  it('runs as nobody, where the container’s processes are root’s and in its view', async () => {
    expect(readFileSync(`/proc/${b!.pid}/status`, 'latin1')).toMatch(/^Uid:\s+65534\s/m);
    // In view: what makes a broker try /proc first (an engine whose processes are out of view
    // was always ended from inside, and would make the tests below pass without the fix).
    const init = (await docker.getContainer(id).inspect()).State.Pid;
    expect(existsSync(`/proc/${init}/environ`)).toBe(true);
    expect(readFileSync(`/proc/${init}/status`, 'latin1')).toMatch(/^Uid:\s+0\s/m);
  });

  it("ends a vanished client's processes, from inside the container", async () => {
    const c = await openCommand(b!.wsUrl, await b!.mint({ apps: [app] }), target, ['sh', '-c', 'echo up; sleep 1061']);
    await c.waitFor(() => c.stdoutText() === 'up\n', 'the command running');
    await eventually(() => running('1061'), 'sleep 1061 running');
    c.ws.terminate();
    await eventually(async () => !(await running('1061')), 'sleep 1061 ended', 15_000);
  });

  it("delivers a client's signal to the session's processes", async () => {
    // Protocol 2's SIGNAL: TERM to every process of the session, sh and its sleep alike.
    const c = await openCommand(b!.wsUrl, await b!.mint({ apps: [app] }), target, ['sh', '-c', "trap 'echo got-term; exit 3' TERM; echo up; sleep 1062 & wait"]);
    await c.waitFor(() => c.stdoutText() === 'up\n', 'the command running');
    await eventually(() => running('1062'), 'sleep 1062 running');
    c.send(RequestType.SIGNAL, 'TERM');
    await c.closed;
    expect(c.stdoutText()).toBe('up\ngot-term\n');
    await eventually(async () => !(await running('1062')), 'sleep 1062 ended', 15_000);
  });
});

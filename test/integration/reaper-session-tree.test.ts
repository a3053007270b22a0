import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';

/**
 * The broker reading /proc (host reap mode) ends what a session started when its client
 * vanishes, whatever those processes did to the environment that carries the session's mark,
 * and however fast they fork while being ended.
 */

/** Writes zeros over the shell's own environment in memory, as setproctitle does (nginx, redis, postgres). */
const OVERWRITE_ENVIRONMENT = 's=$(< /proc/$$/stat); s=${s##*) }; set -- $s; exec 3<>/proc/$$/mem; dd if=/dev/zero bs=1 seek=${48} count=$((${49} - ${48})) >&3 2>/dev/null; exec 3>&-';

describe("host reap mode: the session's tree", () => {
  const containers = new TestContainers();
  const app = uniqueApp('rt');
  const target = { app, proc: 'web', instance: 1 };
  let b: TestBroker;
  let containerId = '';
  let token = '';

  beforeAll(async () => {
    b = await startTestBroker({ 'kill-grace': 300 }, { reapMode: 'host' });
    containerId = await containers.entry(app, 'web', 1);
    token = await b.mint({ apps: [app] });
  });
  afterAll(async () => {
    await b?.stop();
    await containers.removeAll();
  });

  const running = async (args: string) => (await containerProcesses(containerId)).filter((p) => p.trim() === args).length;

  it('ends the command itself when it started with a clean environment (env -i)', async () => {
    const c = await openCommand(b.wsUrl, token, target, ['env', '-i', '/bin/sleep', '1021']);
    await eventually(async () => (await running('/bin/sleep 1021')) === 1, 'the command running');
    c.ws.terminate();
    await eventually(async () => (await running('/bin/sleep 1021')) === 0, 'the command ended', 15_000);
  });

  it('ends a child that wrote over its environment in place, as setproctitle does', async () => {
    const fifo = `/tmp/${uniqueApp('fifo')}`;
    // bash blocks in its own open(2) of the FIFO: no child of its own carries the mark for it.
    const c = await openCommand(b.wsUrl, token, target, ['sh', '-c', `mkfifo ${fifo}; bash -c '${OVERWRITE_ENVIRONMENT}; echo READY; read -r _ < ${fifo}' & wait`]);
    await c.waitFor(() => c.stdoutText().includes('READY'), 'READY');
    const overwritten = (await containerProcesses(containerId)).filter((p) => p.startsWith('bash -c s=')).length;
    expect(overwritten).toBe(1);
    c.ws.terminate();
    await eventually(async () => (await containerProcesses(containerId)).every((p) => !p.startsWith('bash -c s=')), 'the child ended', 15_000);
  });

  it('ends what a loop that ignores SIGHUP forks while it is being killed', async () => {
    const c = await openCommand(b.wsUrl, token, target, ['sh', '-c', `trap '' HUP; echo READY; while :; do (sleep 1023 &); done`]);
    await c.waitFor(() => c.stdoutText().includes('READY'), 'READY');
    await eventually(async () => (await running('sleep 1023')) > 10, 'the loop forking');
    c.ws.terminate();
    await eventually(async () => b.logs.some((l) => l.includes('"msg":"session end"')), 'the session end');
    await eventually(async () => (await running('sleep 1023')) === 0, 'every sleep ended', 15_000);
    expect(b.logs.filter((l) => l.includes('could not end the session processes'))).toEqual([]);
  });
});

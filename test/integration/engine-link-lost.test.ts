import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ReapMode } from '../../broker/docker/process-reaper.js';
import { brokerBehindEngineProxy } from '../helpers/engine-behind-proxy.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import { WireClient } from '../helpers/wire-client.js';

/**
 * The link between the broker and the engine breaks while a command runs (a tcp:// or ssh://
 * engine link dropping, a socket proxy's idle timeout, dockerd restarting with live-restore).
 * The exec goes on in the container without its stream: the broker must end it, as it does when
 * the client leaves, and tell the client why. Seen through a proxy in front of the engine socket.
 */

describe.each(['host', 'exec'] as ReapMode[])('the engine stream lost while a command runs (reap mode %s)', (mode) => {
  const f = brokerBehindEngineProxy('el', { 'kill-grace': 300 }, { reapMode: mode });
  const { app, target, engine, running, ready } = f;

  it.each([false, true])('ends the processes and closes the client with a reason (tty %s)', async (tty) => {
    const tag = tty ? '1021' : '1022';
    // The cut also broke the broker's event stream: wait until it has the engine again.
    await ready();
    const c = await openCommand(f.broker.wsUrl, await f.broker.mint({ apps: [app] }), target, ['sh', '-c', `echo READY; sleep ${tag}`], tty);
    await c.waitFor(() => c.stdoutText().includes('READY'), 'READY');
    await eventually(() => running(tag), `sleep ${tag} running`);

    engine.cut();
    await c.closed;
    const close = c.closeMessage();
    expect(close, 'a CLOSE message').toBeDefined();
    // The engine answered again at once (the exec still running, no exit code): the stream was
    // lost. Had it not answered, the engine is unreachable; either way the CLOSE says which.
    expect(['ENTRY_STREAM_LOST', 'ENTRY_DOCKER_UNAVAILABLE']).toContain(close!.code);
    expect(new TextDecoder().decode(close!.content)).toMatch(/lost the stream to the process while it ran|docker engine unreachable/);
    // The exec outlived its stream; the session's end ended it. Checked on the engine's own socket.
    await eventually(async () => !(await running(tag)), `sleep ${tag} ended`, 15_000);
    expect(f.broker.logs.filter((l) => l.includes('could not end the session processes'))).toEqual([]);
  }, 40_000);

  it('ends the processes once the engine answers again, when the link stays down for a while', async () => {
    const tag = '1023';
    await ready();
    const c = await openCommand(f.broker.wsUrl, await f.broker.mint({ apps: [app] }), target, ['sh', '-c', `echo READY; sleep ${tag}`]);
    await c.waitFor(() => c.stdoutText().includes('READY'), 'READY');
    await eventually(() => running(tag), `sleep ${tag} running`);
    // Three seconds in which every connection to the engine is refused, the clean-up's included.
    engine.cut(3_000);
    await c.closed;
    expect(['ENTRY_STREAM_LOST', 'ENTRY_DOCKER_UNAVAILABLE']).toContain(c.closeMessage()?.code);
    await eventually(async () => !(await running(tag)), `sleep ${tag} ended`, 30_000);
  }, 60_000);

  it("ends a process the engine started when the start's answer was lost, and keeps its session in the ledger until then", async () => {
    const tag = mode === 'host' ? '1025' : '1026';
    await ready();
    // The start request reaches the engine; its answer is held until every link is reset. (Only
    // this session's start: the test before may still be scanning the container to end its own.)
    const ledger = join(f.broker.stateDir, 'sessions');
    // Entries only: an entry rewritten is written beside it (`.next`) and renamed over it.
    const entries = () =>
      readdirSync(ledger, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .flatMap((d) => readdirSync(join(ledger, d.name)))
        .filter((name) => name.endsWith('.json'));
    // The test before leaves its session there (kept until the minute's sweep).
    const before = new Set(entries());
    f.freezeOnceStarted(['sleep', tag]);
    const c = await openCommand(f.broker.wsUrl, await f.broker.mint({ apps: [app] }), target, ['sleep', tag]);
    await eventually(() => running(tag), `sleep ${tag} running`);
    // Refused for three seconds: the clean-up's first try fails too.
    engine.cut(3_000);
    await c.closed;
    expect(c.closeMessage()?.code).toBe('ENTRY_DOCKER_UNAVAILABLE');
    // Until its processes are ended, the session stays in the ledger (for the sweep, or the next broker).
    const added = () => entries().filter((e) => !before.has(e));
    expect(added()).toHaveLength(1);
    const session = added()[0]!.replace(/\.json$/, '');
    await eventually(async () => f.broker.logs.some((l) => l.includes('"session refused"') && l.includes(session)), 'the refusal to be logged');
    if (mode === 'exec') {
      // Ending it needs the engine: the first try fails, and the session stays in the ledger.
      await eventually(async () => f.broker.logs.some((l) => l.includes('could not end what the failed start may have left running') && l.includes(session)), 'the failed clean-up to be logged');
      expect(added()).toEqual([`${session}.json`]);
      await eventually(async () => !(await running(tag)), `sleep ${tag} ended`, 30_000);
      await eventually(async () => f.broker.logs.some((l) => l.includes('session processes ended once the link was back') && l.includes(session)), 'the clean-up to be logged');
    } else {
      // The broker sees the container's processes itself: ended at once, and out of the ledger.
      await eventually(async () => !(await running(tag)), `sleep ${tag} ended`);
      await eventually(async () => added().length === 0, 'the entry to leave the ledger');
    }
  }, 60_000);
});

describe('/attach when the link to the engine breaks', () => {
  const f = brokerBehindEngineProxy('ea', {});
  const { app, engine, ready } = f;

  it('tells the engine unreachable, not the container stopped, while the container runs on', async () => {
    await ready();
    const c = await WireClient.connect(f.broker.wsUrl.replace(/\/enter$/, '/attach'), { 'access-token': await f.broker.mint({ apps: [app] }), 'app-name': app, 'proc-name': 'web', 'instance-no': '1' });
    await eventually(async () => f.broker.logs.some((l) => l.includes('"attach start"')), 'the attach to start');
    engine.cut();
    expect((await c.closed).reason).toBe('ENTRY_DOCKER_UNAVAILABLE');
    expect(new TextDecoder().decode(c.closeMessage()?.content)).toMatch(/log stream from the engine ended while the container runs/);
  }, 40_000);
});

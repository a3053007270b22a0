import { describe, expect, it } from 'vitest';
import { ENGINE_CALL_TIMEOUT_MS } from '../../broker/docker/engine.js';
import { ResponseType } from '../../proto/codec.js';
import { brokerBehindEngineProxy } from '../helpers/engine-behind-proxy.js';
import { eventually, openCommand } from '../helpers/sessions.js';

/**
 * An engine that takes a call and never answers it (a dockerd stuck on a container's lock, a
 * network that drops packets without resetting). An open gives up after --open-timeout, the
 * client is told why, its slot is free again, and a process the engine did start is ended. A
 * call made while a session ends (its exit code, its PID) gives up after ENGINE_CALL_TIMEOUT_MS.
 */

const OPEN_TIMEOUT_MS = 1_500;

/** Pings while the exec opens: a client watching for silence from the upgrade on hears them. */
const PING_INTERVAL_MS = 300;

describe('an engine that does not answer an exec call', () => {
  const f = brokerBehindEngineProxy('na', { 'open-timeout': OPEN_TIMEOUT_MS, 'max-user-sessions': 1, 'kill-grace': 300, 'ping-interval': PING_INTERVAL_MS });
  const { app, target, engine, running, ready } = f;
  /** Freezes every link to the engine once a request matching `call` has gone through. */
  const holdAnswerTo = (call: RegExp) => {
    engine.tap = (chunk) => {
      if (!call.test(chunk.toString('latin1'))) return;
      engine.tap = undefined;
      setImmediate(() => engine.freeze());
    };
  };

  it.each([
    ['exec create', /^POST \/[^ ]*containers\/[0-9a-f]+\/exec /, '1031'],
    ['exec start', /^POST \/[^ ]*exec\/[0-9a-f]+\/start /, '1032'],
  ])('refuses the session after the timeout when %s gets no answer, frees its slot and leaves nothing running', async (call, request, tag) => {
    // A frozen link also held the broker's event stream: wait until it has the engine again.
    await ready();
    const token = await f.broker.mint({ apps: [app] });
    holdAnswerTo(request);
    const started = Date.now();
    const c = await openCommand(f.broker.wsUrl, token, target, ['sleep', tag]);
    // A start that went out is carried out; a create alone starts nothing.
    if (call === 'exec start') await eventually(() => running(tag), `sleep ${tag} running`);
    await c.closed;
    const waited = Date.now() - started;
    const close = c.closeMessage();
    expect(close?.code).toBe('ENTRY_DOCKER_UNAVAILABLE');
    expect(new TextDecoder().decode(close!.content)).toContain(`no answer within ${OPEN_TIMEOUT_MS} ms`);
    expect(waited).toBeGreaterThanOrEqual(OPEN_TIMEOUT_MS - 50);
    expect(waited).toBeLessThan(OPEN_TIMEOUT_MS + 5_000);
    // Not silent while it waited on the engine.
    expect(c.messages.filter((m) => m.msgType === ResponseType.PING).length).toBeGreaterThanOrEqual(2);
    // The engine answers again (the held links are reset, as a network that comes back resets
    // what it dropped): whatever it started is ended.
    engine.cut();
    await eventually(async () => !(await running(tag)), `sleep ${tag} not running`, 15_000);
    // The user's one slot is free: the next session runs (once the broker has the engine again).
    await ready();
    const next = await openCommand(f.broker.wsUrl, token, target, ['echo', 'after']);
    await next.closed;
    expect(next.stdoutText(), new TextDecoder().decode(next.closeMessage()?.content)).toBe('after\n');
    expect(new TextDecoder().decode(next.messages.find((m) => m.msgType === ResponseType.EXIT)?.content)).toBe('0');
  }, 60_000);

  it("tells the client once the exit code's inspect goes unanswered, and still ends what the session left running", async () => {
    const tag = '1033';
    await ready();
    // The first two exec inspects are held: the exit code's, then the one for the PID to end.
    let held = 0;
    engine.tap = (chunk, hold) => {
      if (!/^GET \/[^ ]*exec\/[0-9a-f]+\/json/.test(chunk.toString('latin1'))) return;
      if (++held === 2) engine.tap = undefined;
      hold();
    };
    const c = await openCommand(f.broker.wsUrl, await f.broker.mint({ apps: [app] }), target, ['sh', '-c', `sleep ${tag} >/dev/null 2>&1 & echo READY`]);
    await c.waitFor(() => c.stdoutText().includes('READY'), 'READY');
    const ended = Date.now();
    await eventually(() => running(tag), `sleep ${tag} running`);
    await c.closed;
    const waited = Date.now() - ended;
    expect(c.closeMessage()?.code).toBe('ENTRY_DOCKER_UNAVAILABLE');
    expect(new TextDecoder().decode(c.closeMessage()!.content)).toContain('reading the exit code: no answer in time');
    expect(waited).toBeGreaterThanOrEqual(ENGINE_CALL_TIMEOUT_MS - 500);
    // The session's leftover is found without the exec's PID (through the container's init).
    await eventually(async () => !(await running(tag)), `sleep ${tag} ended`, 2 * ENGINE_CALL_TIMEOUT_MS + 10_000);
    expect(held).toBe(2);
  }, 90_000);
});

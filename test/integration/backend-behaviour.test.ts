import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, spawn } from '../../client/index.js';
import { BACKENDS, type TargetHandle } from '../helpers/backends.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { uniqueApp } from '../helpers/containers.js';
import { eventually, EXIT_CODE_CASES, openCommand } from '../helpers/sessions.js';
import { WireClient } from '../helpers/wire-client.js';

/**
 * What a user gets from a target, the same on every backend: scripted runs with exit codes,
 * stdin and its EOF, stdout and stderr apart, every byte at exit, refusals that reach no
 * process, and no process left behind by a client that vanished.
 */
describe.each(BACKENDS.map((make) => make()))('scripted and hardening behaviour ($kind)', (backend) => {
  const app = uniqueApp('bb');
  let b: TestBroker;
  let target: TargetHandle;
  let base: { broker: string; token: string; target: { app: string; proc: string; instance: number } };

  beforeAll(async () => {
    target = await backend.target(app, 'web', 1);
    b = await startTestBroker(backend.settings());
    base = { broker: b.url, token: await b.mint({ apps: [app] }), target: { app, proc: 'web', instance: 1 } };
  }, backend.setupTimeoutMs);
  afterAll(async () => {
    await b?.stop();
    await backend.cleanup();
  });

  it('returns exit codes 0, 1, 7, 127 and 137', async () => {
    for (const [command, code] of EXIT_CODE_CASES) {
      expect((await run({ ...base, command })).exitCode, command.join(' ')).toBe(code);
    }
  });

  it('feeds stdin, delivers EOF, and keeps stdout and stderr apart', async () => {
    const r = await run({ ...base, command: ['sh', '-c', 'cat; echo err >&2'], stdin: 'hello\n' });
    expect(r).toEqual({ exitCode: 0, stdout: Buffer.from('hello\n'), stderr: Buffer.from('err\n') });
  });

  it('ends a terminal session input after unfinished text too (printf abc | enter -t … -- cat)', async () => {
    for (const stdin of ['abc', 'abc\n', 'one\ntwo']) {
      const r = await run({ ...base, command: ['cat'], stdin, tty: true });
      expect(r.exitCode, JSON.stringify(stdin)).toBe(0);
      // Everything twice, in some order: the terminal's echo and cat's copy (lines end in CR LF there).
      const out = r.stdout.toString().replace(/\r\n/g, '\n');
      expect([...out].sort().join(''), JSON.stringify(stdin)).toBe([...stdin, ...stdin].sort().join(''));
    }
  }, 60_000);

  it('loses nothing at exit: seq 1 2000000', async () => {
    const r = await run({ ...base, command: ['seq', '1', '2000000'] });
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.toString().split('\n');
    expect(lines.length).toBe(2_000_001);
    expect(lines[1_999_999]).toBe('2000000');
  }, 120_000);

  it('refuses a token for another app before any process starts', async () => {
    const before = await target.processes();
    const other = await b.mint({ apps: ['someone-else'] });
    const c = await WireClient.connect(b.wsUrl, { 'access-token': other, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2' });
    await c.closed;
    expect(c.closeMessage()?.code).toBe('ENTRY_FORBIDDEN');
    expect(await target.processes()).toEqual(before);
  });

  it('leaves no process behind when the client vanishes mid-command', async () => {
    const marker = `sleep 4${Math.floor(Math.random() * 1000)}`;
    const c = await openCommand(b.wsUrl, base.token, base.target, ['sh', '-c', `echo started; ${marker}`]);
    await c.waitFor(() => c.stdoutText().includes('started'), 'the command');
    const running = (await target.processes()).filter((p) => p.includes(marker));
    expect(running.length, 'the command runs').toBeGreaterThan(0);
    c.ws.terminate();
    await eventually(async () => (await target.processes()).every((p) => !p.includes(marker)), 'the processes to be gone', 20_000);
  });

  it('passes a signal to the remote command', async () => {
    const p = await spawn({ ...base, command: ['sh', '-c', 'trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.1; done'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await eventually(async () => out.includes('ready'), 'the trap to be set');
    p.signal('TERM');
    expect(await p.wait()).toBe(3);
    expect(out).toContain('got-term');
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestType, ResponseType } from '../../proto/codec.js';
import { BACKENDS } from '../helpers/backends.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { uniqueApp } from '../helpers/containers.js';
import { exitCodeOf } from '../helpers/hardening.js';
import { openCommand } from '../helpers/sessions.js';
import { WireClient } from '../helpers/wire-client.js';

describe.each(BACKENDS.map((make) => make()))('an interactive session end to end ($kind)', (backend) => {
  const app = uniqueApp();
  let b: TestBroker;
  let token: string;

  beforeAll(async () => {
    await backend.target(app, 'web', 1);
    await backend.target(app, 'small', 1, 'entry-demo:nobash');
    b = await startTestBroker({ 'ping-interval': 100, ...backend.settings() });
    token = await b.mint({ apps: [app] });
  }, backend.setupTimeoutMs);
  afterAll(async () => {
    await b?.stop();
    await backend.cleanup();
  });

  const open = (proc = 'web', extra: Record<string, string> = {}) =>
    WireClient.connect(b.wsUrl, { 'access-token': token, 'app-name': app, 'proc-name': proc, 'instance-no': '1', ...extra });

  it('applies a WINCH sent before the shell started, and later ones too (stty size)', async () => {
    const c = await open();
    c.send(1, '123 45'); // at once: the exec may not run yet
    c.type('stty size; echo END1\r');
    await c.waitFor(() => /45 123\r?\nEND1/.test(c.stdoutText()), 'first size');
    c.send(1, '100 30');
    c.type('stty size; echo END2\r');
    await c.waitFor(() => /30 100\r?\nEND2/.test(c.stdoutText()), 'second size');
    c.type('exit\r');
    await c.closed;
  });

  it('ends the input of a TTY command after the bytes sent before it, even right behind a resize', async () => {
    const c = await openCommand(b.wsUrl, token, { app, proc: 'web', instance: 1 }, ['sh', '-c', 'stty -echo; echo READY; cat; echo DONE'], true);
    await c.waitFor(() => c.stdoutText().includes('READY'), 'READY');
    // In one go: the line and the end of input wait for the resize, in the order they came.
    c.send(RequestType.WINCH, '120 40');
    c.send(RequestType.PLAIN, 'typed behind the resize\n');
    c.send(RequestType.STDIN_EOF);
    await c.waitFor(() => /typed behind the resize\r?\n(.|\r|\n)*DONE/.test(c.stdoutText()), 'the line, then the end of input');
    await c.closed;
    expect(exitCodeOf(c)).toBe(0);
  });

  it('keeps the last of a burst of resizes', async () => {
    const c = await open();
    for (let i = 1; i <= 50; i++) c.send(1, `${60 + i} ${20 + (i % 7)}`);
    c.send(1, '77 33');
    // The engine applies the last size once the one in flight is done, however long that takes
    // on a loaded machine: asked until it shows (5 s at most), never taken at a fixed moment.
    c.type('for i in $(seq 50); do s=$(stty size); [ "$s" = "33 77" ] && break; sleep 0.1; done; echo "size=$s"\r');
    await c.waitFor(() => /size=\S+ \S+\r?\n/.test(c.stdoutText()), 'the size the loop ended with');
    expect(c.stdoutText()).toMatch(/size=33 77\r?\n/);
    c.type('exit\r');
    await c.closed;
  });

  it('delivers a multibyte character split across reads whole, in one message', async () => {
    const c = await open();
    c.send(1, '80 24');
    // printf writes the 4-byte emoji in two writes with a pause between them.
    c.type("printf 'A\\360\\237'; sleep 0.2; printf '\\230\\200B\\n'\r");
    await c.waitFor(() => c.stdoutText().includes('A😀B'), 'the emoji');
    for (const m of c.messages.filter((m) => m.msgType === ResponseType.STDOUT)) {
      expect(() => new TextDecoder('utf-8', { fatal: true }).decode(m.content)).not.toThrow();
    }
    c.type('exit\r');
    await c.closed;
  });

  it('passes colours and Unicode through the TTY', async () => {
    const c = await open();
    c.type("printf '\\033[32mgrün ✓\\033[0m\\n'\r");
    await c.waitFor(() => c.stdoutText().includes('\x1b[32mgrün ✓\x1b[0m'), 'coloured text');
    c.type('exit\r');
    await c.closed;
  });

  it('sends CLOSE after exit, and the exit code in its line', async () => {
    const c = await open();
    c.type('exit 5\r');
    const closed = await c.closed;
    const close = c.closeMessage();
    expect(close).toBeDefined();
    expect(new TextDecoder().decode(close!.content)).toContain('exited with code 5');
    expect(c.messages.at(-1)?.msgType).toBe(ResponseType.CLOSE);
    expect(closed.code).toBe(1000);
  });

  it('sends PING messages on the configured interval', async () => {
    const c = await open();
    await c.waitFor(() => c.messages.filter((m) => m.msgType === ResponseType.PING).length >= 2, 'two pings');
    const ping = c.messages.find((m) => m.msgType === ResponseType.PING)!;
    expect(new TextDecoder().decode(ping.content)).toBe('ping');
    c.type('exit\r');
    await c.closed;
  });

  it('falls back to sh when the image has no bash', async () => {
    const c = await open('small');
    c.type('echo "shell=$0 bash=$BASH_VERSION."\r');
    await c.waitFor(() => /shell=sh bash=\./.test(c.stdoutText()), 'sh answering');
    c.type('exit\r');
    await c.closed;
  });

  it('honours term-type as TERM', async () => {
    const c = await open('web', { 'term-type': 'vt100' });
    c.type('echo "term=$TERM"\r');
    await c.waitFor(() => c.stdoutText().includes('term=vt100'), 'TERM');
    c.type('exit\r');
    await c.closed;
  });

  it('survives malformed frames: the session ends with a reason, the broker keeps serving', async () => {
    const c = await open();
    c.ws.send(Buffer.from([0x08, 0xff, 0xff, 0xff])); // truncated varint
    const closed = await c.closed;
    expect(closed.code).toBe(1007);
    expect(new TextDecoder().decode(c.closeMessage()!.content)).toMatch(/malformed/);
    const again = await open();
    again.type('exit\r');
    await again.closed;
    expect(new TextDecoder().decode(again.closeMessage()!.content)).toContain('exited with code 0');
  });
});

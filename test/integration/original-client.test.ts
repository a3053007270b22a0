import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResponseType } from '../../proto/codec.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { WireClient } from '../helpers/wire-client.js';

/**
 * A client that knows only what LAIN's Entry clients knew: the five headers, PLAIN one
 * character at a time, WINCH on start, and the four response types.
 */
describe('an unmodified original-protocol client', () => {
  const containers = new TestContainers();
  const app = uniqueApp();
  let b: TestBroker;

  beforeAll(async () => {
    b = await startTestBroker();
    await containers.entry(app, 'web', 2);
  });
  afterAll(async () => {
    await b.stop();
    await containers.removeAll();
  });

  it('enters, runs commands typed one character per message, and sees only types it knows', async () => {
    const c = await WireClient.connect(b.wsUrl, {
      'access-token': await b.mint({ apps: [app] }),
      'app-name': app,
      'proc-name': 'web',
      'instance-no': '2',
      'term-type': 'xterm',
    });
    c.send(1, '120 40');
    c.type('echo $((6*7)); hostname >/dev/null; echo "$TERM"\r');
    await c.waitFor(() => /42\r?\nxterm\r?\n/.test(c.stdoutText()), 'command output');
    c.type('cd /etc && pwd\r');
    await c.waitFor(() => c.stdoutText().includes('/etc\r\n'), 'pwd');
    c.type('exit\r');
    await c.closed;
    const known: number[] = [ResponseType.STDOUT, ResponseType.STDERR, ResponseType.CLOSE, ResponseType.PING];
    expect(c.messages.every((m) => known.includes(m.msgType))).toBe(true);
    expect(c.messages.every((m) => m.code === '')).toBe(true);
    expect(c.messages.at(-1)!.msgType).toBe(ResponseType.CLOSE);
  });

  it('gets a CLOSE with a red reason when the container does not exist', async () => {
    const c = await WireClient.connect(b.wsUrl, { 'access-token': await b.mint({ apps: [app] }), 'app-name': app, 'proc-name': 'web', 'instance-no': '7' });
    await c.closed;
    const text = new TextDecoder().decode(c.closeMessage()!.content);
    expect(text).toBe(`\r\n\x1b[31mentry: container not found: ${app}/web/7\x1b[0m\r\n`);
  });
});

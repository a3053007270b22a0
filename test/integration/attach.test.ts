import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResponseType } from '../../proto/codec.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { docker, uniqueApp } from '../helpers/containers.js';
import { WireClient } from '../helpers/wire-client.js';

/** /attach: the container's own output, read-only, as a tracked session of the broker. */
describe('/attach', () => {
  const app = uniqueApp('at');
  let b: TestBroker;
  let id: string;

  beforeAll(async () => {
    const c = await docker.createContainer({
      Image: 'entry-demo:latest',
      Cmd: ['sh', '-c', 'echo hello-from-main; echo oops-on-stderr >&2; while read line; do echo "got $line"; done; sleep 1000'],
      Labels: { 'entry.test': '1', 'entry.app': app, 'entry.proc': 'web', 'entry.instance': '1' },
      HostConfig: { NetworkMode: 'none' },
    });
    id = c.id;
    await c.start();
    b = await startTestBroker();
  });
  afterAll(async () => {
    await b?.stop();
    await docker.getContainer(id).remove({ force: true }).catch(() => undefined);
  });

  const open = async () =>
    WireClient.connect(b.wsUrl.replace(/\/enter$/, '/attach'), { 'access-token': await b.mint({ apps: [app] }), 'app-name': app, 'proc-name': 'web', 'instance-no': '1' });

  it('relays the main process output with stdout and stderr apart, ignores input, and counts as a session', async () => {
    const c = await open();
    await c.waitFor(() => c.stdoutText().includes('hello-from-main'), 'the container log');
    await c.waitFor(() => c.messages.some((m) => m.msgType === ResponseType.STDERR && new TextDecoder().decode(m.content).includes('oops-on-stderr')), 'stderr');
    c.type('ignored\n');
    expect(b.broker.sessionCount).toBe(1);
    c.ws.close();
    await c.closed;
    await expect.poll(() => b.broker.sessionCount).toBe(0);
    expect(c.stdoutText()).not.toContain('got ignored');
  });

  it('ends with "container stopped" when the container stops', async () => {
    const c = await open();
    await c.waitFor(() => c.stdoutText().includes('hello-from-main'), 'the container log');
    await docker.getContainer(id).stop({ t: 0 });
    await c.closed;
    expect(new TextDecoder().decode(c.closeMessage()?.content)).toContain('container stopped');
  });
});

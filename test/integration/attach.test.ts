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
    b = await startTestBroker({ 'max-user-sessions': 1 });
  });
  afterAll(async () => {
    await b?.stop();
    await docker.getContainer(id).remove({ force: true }).catch(() => undefined);
  });

  const open = async (user = 'alice') =>
    WireClient.connect(b.wsUrl.replace(/\/enter$/, '/attach'), { 'access-token': await b.mint({ apps: [app] }, { user }), 'app-name': app, 'proc-name': 'web', 'instance-no': '1' });

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

  it("takes one of the user's sessions, is listed for admins as an attach, and an admin's kill ends it", async () => {
    // A user of its own: the slot the test before freed may still be on its way back.
    const c = await open('attacher');
    await c.waitFor(() => c.stdoutText().includes('hello-from-main'), 'the container log');
    // The user's one session is taken: another attach is refused.
    const second = await open('attacher');
    expect((await second.closed).reason).toBe('ENTRY_USER_SESSION_LIMIT');
    const admin = await b.mint({ roles: ['entry-admin'] }, { user: 'boss' });
    // Refused as an exec is: in the audit trail.
    const refusals = async () => ((await (await fetch(`${b.url}/api/audit?type=session.refused&user=attacher`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { events: Array<{ code: string }> }).events;
    await expect.poll(refusals).toEqual([expect.objectContaining({ code: 'ENTRY_USER_SESSION_LIMIT' })]);
    const listed = async () => ((await (await fetch(`${b.url}/api/sessions`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { sessions: Array<{ id: string; user: string; attach?: boolean; command: string[] | null }> }).sessions;
    await expect.poll(async () => (await listed()).filter((s) => s.user === 'attacher')).toEqual([expect.objectContaining({ attach: true, command: null })]);
    const id = (await listed()).find((s) => s.user === 'attacher')!.id;
    // Nothing to watch in it: refused, saying what to do instead.
    const watcher = await WireClient.connect(`${b.wsUrl.replace(/\/enter$/, '/watch')}?session=${id}`, { 'access-token': admin, 'entry-protocol': '2' });
    expect((await watcher.closed).reason).toBe('ENTRY_BAD_REQUEST');
    expect(new TextDecoder().decode(watcher.closeMessage()?.content)).toMatch(/is an attach .*GET \/attach/);
    expect((await fetch(`${b.url}/api/sessions/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } })).status).toBe(202);
    expect((await c.closed).reason).toBe('ENTRY_KILLED');
    await expect.poll(async () => (await listed()).filter((s) => s.user === 'attacher')).toEqual([]);
  });

  it('ends with "container stopped" when the container restarts, running again by the time the broker looks', async () => {
    const c = await open();
    await c.waitFor(() => c.stdoutText().includes('hello-from-main'), 'the container log');
    await docker.getContainer(id).restart({ t: 0 });
    expect((await c.closed).reason).toBe('ENTRY_CONTAINER_GONE');
    expect(new TextDecoder().decode(c.closeMessage()?.content)).toContain('container stopped');
  });

  it('ends with "container stopped" when the container stops', async () => {
    const c = await open();
    await c.waitFor(() => c.stdoutText().includes('hello-from-main'), 'the container log');
    await docker.getContainer(id).stop({ t: 0 });
    await c.closed;
    expect(new TextDecoder().decode(c.closeMessage()?.content)).toContain('container stopped');
  });
});

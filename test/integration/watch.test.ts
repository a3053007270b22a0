import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { ResponseType } from '../../proto/codec.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually } from '../helpers/sessions.js';
import { WireClient } from '../helpers/wire-client.js';

describe('live watch: an admin sees a session read-only', () => {
  const containers = new TestContainers();
  const app = uniqueApp();
  let b: TestBroker;

  beforeAll(async () => {
    b = await startTestBroker();
    await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await b.stop();
    await containers.removeAll();
  });

  const sessionIdOf = async (admin: string, user: string) => {
    const res = await fetch(`${b.url}/api/sessions`, { headers: { authorization: `Bearer ${admin}` } });
    return ((await res.json()) as { sessions: Array<{ id: string; user: string }> }).sessions.find((s) => s.user === user)!.id;
  };

  it('streams the output live, ignores the watcher’s keys, tells the user, and closes with the session', async () => {
    const admin = await b.mint({ roles: ['entry-admin'] }, { user: 'overseer' });
    const user = await WireClient.connect(b.wsUrl, { 'access-token': await b.mint({ apps: [app] }, { user: 'watched' }), 'app-name': app, 'proc-name': 'web', 'instance-no': '1' });
    user.send(1, '80 24');
    user.type('echo READY\r');
    await user.waitFor(() => user.stdoutText().includes('READY\r\n'), 'the shell');
    const id = await sessionIdOf(admin, 'watched');

    const watcher = await WireClient.connect(`${b.url.replace('http', 'ws')}/watch?session=${id}`, { 'access-token': admin });
    await user.waitFor(() => user.stdoutText().includes('[entry: overseer is watching this session]'), 'the banner');
    user.type('echo "seen by $((40+2))"\r');
    await watcher.waitFor(() => watcher.stdoutText().includes('seen by 42'), 'live output at the watcher');
    watcher.type('touch /tmp/watcher-was-here\r');
    user.type('ls /tmp/watcher-was-here 2>&1 | tail -1\r');
    await user.waitFor(() => /No such file/.test(user.stdoutText()), 'proof the watcher typed nothing');
    user.type('exit\r');
    await watcher.closed;
    expect(new TextDecoder().decode(watcher.closeMessage()!.content)).toMatch(/the watched session ended: exited with code 0/);
    await eventually(async () => {
      const res = await fetch(`${b.url}/api/audit?type=session.watch`, { headers: { authorization: `Bearer ${admin}` } });
      const events = ((await res.json()) as { events: Array<{ by: string; user: string; sessionId: string }> }).events;
      return events.some((e) => e.by === 'overseer' && e.user === 'watched' && e.sessionId === id);
    }, 'the session.watch audit event');
  });

  it('works from the CLI: enter watch <id> prints the output and ends with the session', async () => {
    const admin = await b.mint({ roles: ['entry-admin'] }, { user: 'cli-overseer' });
    const user = await WireClient.connect(b.wsUrl, { 'access-token': await b.mint({ apps: [app] }, { user: 'cli-watched' }), 'app-name': app, 'proc-name': 'web', 'instance-no': '1' });
    user.type('echo READY\r');
    await user.waitFor(() => user.stdoutText().includes('READY\r\n'), 'the shell');
    const id = await sessionIdOf(admin, 'cli-watched');
    const child = spawn(process.execPath, [CLI, 'watch', id], { env: { ...process.env, ENTRY_BROKER: b.url, ENTRY_TOKEN: admin, ENTRY_CONFIG_DIR: '/nonexistent' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await user.waitFor(() => user.stdoutText().includes('cli-overseer is watching'), 'the banner');
    user.type('echo "via cli $((2*21))"\r');
    await eventually(async () => out.includes('via cli 42'), 'the watcher output');
    user.type('exit\r');
    const status = await new Promise<number | null>((r) => child.on('close', r));
    expect(status).toBe(0);
  });

  it('refuses non-admins and unknown sessions', async () => {
    const nonAdmin = await WireClient.connect(`${b.url.replace('http', 'ws')}/watch?session=abc`, { 'access-token': await b.mint({ apps: ['*'] }) });
    await nonAdmin.closed;
    expect(new TextDecoder().decode(nonAdmin.closeMessage()!.content)).toMatch(/admin role/);
    const unknown = await WireClient.connect(`${b.url.replace('http', 'ws')}/watch?session=does-not-exist`, { 'access-token': await b.mint({ roles: ['entry-admin'] }) });
    await unknown.closed;
    expect(new TextDecoder().decode(unknown.closeMessage()!.content)).toMatch(/no such session/);
    expect(unknown.messages.at(-1)!.msgType).toBe(ResponseType.CLOSE);
  });
});

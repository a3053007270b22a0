import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { runCli } from '../helpers/cli.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { openCommand } from '../helpers/sessions.js';

/** The byte counts `enter sessions` shows for a session running on the broker asked. */
describe('the session list of the broker holding the sessions', () => {
  const containers = new TestContainers();
  const app = uniqueApp('count');
  let b: TestBroker;

  beforeAll(async () => {
    // A heartbeat every 20 s: the stored counts are those of the session's start throughout.
    b = await startTestBroker({ 'session-ttl': '60000' });
    await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await b.stop();
    await containers.removeAll();
  });

  it('counts the bytes of its own sessions as of the listing, not as of the last heartbeat', async () => {
    const s = await openCommand(b.wsUrl, await b.mint({ apps: [app] }, { user: 'counted' }), { app, proc: 'web', instance: 1 }, ['sh', '-c', 'echo up; sleep 1015']);
    await s.waitFor(() => s.stdoutText() === 'up\n', 'the output');
    const env = { ENTRY_BROKER: b.url, ENTRY_TOKEN: await b.mint({ roles: ['entry-admin'] }, { user: 'counter' }), ENTRY_CONFIG_DIR: '/nonexistent' };
    const listed = await runCli(['sessions', '--json'], env);
    expect(listed.status).toBe(0);
    const row = (JSON.parse(listed.stdout.toString()) as Array<{ user: string; bytesIn: number; bytesOut: number }>).find((r) => r.user === 'counted');
    expect(row).toMatchObject({ bytesIn: 0, bytesOut: 3 });
    const table = await runCli(['sessions'], env);
    expect(table.stdout.toString()).toMatch(new RegExp(`counted\\s+${app}/web/1\\s+\\S+\\s+\\S+\\s+0\\s+3\\s`));
    s.ws.close();
    await s.closed;
  });

  it("shows another user's command with its control characters as blanks: an escape in it never reaches the admin's terminal", async () => {
    const command = ['sh', '-c', 'echo up; sleep 1016', '\x9b31m\x1b]0;owned\x07\r'];
    const s = await openCommand(b.wsUrl, await b.mint({ apps: [app] }, { user: 'escaper' }), { app, proc: 'web', instance: 1 }, command);
    await s.waitFor(() => s.stdoutText() === 'up\n', 'the output');
    const env = { ENTRY_BROKER: b.url, ENTRY_TOKEN: await b.mint({ roles: ['entry-admin'] }, { user: 'counter' }), ENTRY_CONFIG_DIR: '/nonexistent' };
    const table = (await runCli(['sessions'], env)).stdout.toString();
    const row = table.split('\n').find((l) => l.includes('escaper'));
    expect(row).toBeDefined();
    expect(row).toMatch(/ {2}sh -c echo up; sleep 1016 {2}31m \]0;owned$/);
    expect(table).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    s.ws.close();
    await s.closed;
  });
});

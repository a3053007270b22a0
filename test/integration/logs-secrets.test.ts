import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../client/api.js';
import { encodeExecSpec, encodeRequest, RequestType } from '../../proto/codec.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { runCli } from '../helpers/cli.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually } from '../helpers/sessions.js';
import { WireClient } from '../helpers/wire-client.js';

/**
 * The broker's log of a full run — scripted (CLI and API), interactive (an original client),
 * a ticket used, replayed and forged, the token in a subprotocol, refusals — at debug level,
 * searched for the token and the tickets. None may appear, in any form.
 */
describe('the log of a full session run', () => {
  const containers = new TestContainers();
  const app = uniqueApp('lg');
  const target = { app, proc: 'web', instance: 1 };
  let b: TestBroker;

  beforeAll(async () => {
    await containers.entry(app, 'web', 1);
    b = await startTestBroker({ 'log-level': 'debug', 'metrics-listen': '127.0.0.1:0' });
  });
  afterAll(async () => {
    await b?.stop();
    await containers.removeAll();
  });

  it('holds one JSON object per line with a level, session ids, and never a token or ticket', async () => {
    const token = await b.mint({ apps: [app] });
    const signature = token.split('.')[2]!;
    const tickets: string[] = [];

    // Scripted: the CLI and the API.
    const cli = await runCli([app, 'web', '1', '--', 'sh', '-c', 'echo scripted; echo err >&2'], { ENTRY_BROKER: b.url, ENTRY_TOKEN: token, ENTRY_CONFIG_DIR: '/nonexistent' });
    expect(cli.stdout.toString()).toBe('scripted\n');
    const api = await run({ broker: b.url, token, target, command: ['cat'], stdin: 'piped' });
    expect(api.stdout.toString()).toBe('piped');

    // Interactive: an original client, headers only, typing one character per message.
    const shell = await WireClient.connect(b.wsUrl, { 'access-token': token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1' });
    shell.send(RequestType.WINCH, '100 30');
    shell.type('echo inter$((1+1))\r');
    await shell.waitFor(() => shell.stdoutText().includes('inter2'), 'the echo');
    shell.type('exit\r');
    await shell.closed;

    // Tickets: issued, used, replayed, forged; the token in a subprotocol.
    const issue = async () => {
      const res = await fetch(`${b.url}/api/tickets`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(target) });
      const { ticket } = (await res.json()) as { ticket: string };
      tickets.push(ticket);
      return ticket;
    };
    const browser = async (query: Record<string, string>, protocols: string[]) => {
      const c = await WireClient.connect(`${b.wsUrl}?${new URLSearchParams(query)}`, {}, protocols);
      c.ws.send(encodeRequest(RequestType.START, encodeExecSpec({ argv: [Buffer.from('echo'), Buffer.from('browser')] })));
      await c.closed;
      return c;
    };
    const ticket = await issue();
    expect((await browser({ app, proc: 'web', instance: '1', ticket }, ['entry.v1'])).stdoutText()).toBe('browser\n');
    expect((await browser({ app, proc: 'web', instance: '1', ticket }, ['entry.v1'])).closeMessage()?.code).toBe('ENTRY_BAD_TOKEN');
    const forged = 'F'.repeat(43);
    tickets.push(forged);
    await browser({ app, proc: 'web', instance: '1', ticket: forged }, ['entry.v1']);
    const bearer = `entry.bearer.${Buffer.from(token).toString('base64url')}`;
    expect((await browser({ app, proc: 'web', instance: '1' }, ['entry.v1', bearer])).stdoutText()).toBe('browser\n');

    // Refusals that carry the token: wrong app, expired, tampered; an API call with a bad token.
    const wrong = await WireClient.connect(b.wsUrl, { 'access-token': token, 'app-name': 'other', 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2' });
    await wrong.closed;
    const expired = await b.mint({ apps: [app] }, { expiresIn: Math.floor(Date.now() / 1000) - 3600 });
    const old = await WireClient.connect(b.wsUrl, { 'access-token': expired, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2' });
    await old.closed;
    const tampered = `${token.slice(0, -4)}AAAA`;
    await fetch(`${b.url}/api/whoami`, { headers: { authorization: `Bearer ${tampered}` } });
    await fetch(`${b.url}/api/containers?access_token=${token}`);

    // Every line the run causes is written once each session has logged its end and the last
    // two requests their access lines (written when the answer is finished, which the client
    // may see first).
    const records = () => b.logs.map((l) => JSON.parse(l) as { msg: string; session?: string; path?: string });
    await eventually(async () => {
      const r = records();
      const ended = new Set(r.filter((x) => x.msg === 'session end').map((x) => x.session));
      const allEnded = r.filter((x) => x.msg === 'session start').every((x) => ended.has(x.session));
      return allEnded && ['/api/whoami', '/api/containers'].every((path) => r.some((x) => x.msg === 'http' && x.path === path));
    }, "the run's last log lines");
    const text = b.logs.join('');
    expect(b.logs.length).toBeGreaterThan(10);
    for (const line of b.logs) {
      expect(line.endsWith('\n')).toBe(true);
      expect(line.slice(0, -1)).not.toContain('\n');
      const rec = JSON.parse(line) as { level: string; msg: string; time: string };
      expect(['debug', 'info', 'warn', 'error']).toContain(rec.level);
      expect(typeof rec.msg).toBe('string');
    }
    const starts = b.logs.map((l) => JSON.parse(l) as { msg: string; session?: string }).filter((r) => r.msg === 'session start');
    expect(starts.length).toBeGreaterThanOrEqual(5);
    for (const s of starts) expect(s.session).toMatch(/^[0-9a-f-]{36}$/);
    for (const secret of [token, signature, expired, expired.split('.')[2]!, tampered, bearer, Buffer.from(token).toString('base64url'), ...tickets]) {
      expect(text.includes(secret), `a credential (${secret.slice(0, 12)}…) is in the log`).toBe(false);
    }
  });
});

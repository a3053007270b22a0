import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encodeExecSpec, encodeRequest, RequestType, ResponseType } from '../../proto/codec.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { execCreateCount, TestContainers, uniqueApp } from '../helpers/containers.js';
import { WireClient } from '../helpers/wire-client.js';

describe('browser ways in: tickets, the subprotocol token, Origin, web mode, /api', () => {
  const containers = new TestContainers();
  const app = uniqueApp();
  const other = uniqueApp();
  let b: TestBroker;
  let token: string;
  let containerId: string;

  beforeAll(async () => {
    b = await startTestBroker({ 'allowed-origin': ['https://console.example'] });
    containerId = await containers.entry(app, 'web', 1);
    await containers.entry(app, 'web', 2);
    await containers.entry(other, 'web', 1);
    token = await b.mint({ apps: [app] });
  });
  afterAll(async () => {
    await b.stop();
    await containers.removeAll();
  });

  const api = (path: string, init: RequestInit = {}, t = token) =>
    fetch(`${b.url}${path}`, { ...init, headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
  const ticketFor = async (target: object) => {
    const res = await api('/api/tickets', { method: 'POST', body: JSON.stringify(target) });
    expect(res.status).toBe(200);
    return (await res.json()) as { ticket: string; expiresAt: string };
  };
  const q = (params: Record<string, string>) => `${b.wsUrl}?${new URLSearchParams(params)}`;

  /** Opens a protocol-2 browser-style socket, runs `echo`, returns what came back. */
  async function runEcho(url: string, protocols: string[], headers: Record<string, string> = {}) {
    const c = await WireClient.connect(url, headers, protocols);
    c.ws.send(encodeRequest(RequestType.START, encodeExecSpec({ argv: [Buffer.from('echo'), Buffer.from('via-browser')] })));
    await c.closed;
    return c;
  }

  it('issues a ticket that opens a session once, for its target only', async () => {
    const { ticket, expiresAt } = await ticketFor({ app, proc: 'web', instance: 1 });
    expect(ticket).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(30_000);
    const ok = await runEcho(q({ app, proc: 'web', instance: '1', ticket }), ['entry.v1']);
    expect(ok.ws.protocol).toBe('entry.v1');
    expect(ok.stdoutText()).toBe('via-browser\n');
    expect(ok.messages.find((m) => m.msgType === ResponseType.EXIT)).toBeDefined();
  });

  it('refuses reused, forged and wrong-target tickets without reaching Docker', async () => {
    const { ticket } = await ticketFor({ app, proc: 'web', instance: 1 });
    await runEcho(q({ app, proc: 'web', instance: '1', ticket }), ['entry.v1']);
    const since = Date.now();
    const cases: Array<[string, Record<string, string>, RegExp]> = [
      ['replayed', { app, proc: 'web', instance: '1', ticket }, /already used/],
      ['forged', { app, proc: 'web', instance: '1', ticket: 'A'.repeat(43) }, /unknown, expired or already used/],
      ['other target', { app, proc: 'web', instance: '2', ticket: (await ticketFor({ app, proc: 'web', instance: 1 })).ticket }, /another target/],
    ];
    for (const [what, params, reason] of cases) {
      const c = await WireClient.connect(q(params), {}, ['entry.v1']);
      const closed = await c.closed;
      expect(closed.code, what).toBe(4401);
      const close = c.closeMessage()!;
      expect(close.code, what).toBe('ENTRY_BAD_TOKEN');
      expect(new TextDecoder().decode(close.content), what).toMatch(reason);
    }
    expect(await execCreateCount(containerId, since)).toBe(0);
  });

  it('spends a ticket whose upgrade was refused before it was redeemed', async () => {
    const { ticket } = await ticketFor({ app, proc: 'web', instance: 1 });
    // Refused for its target's spelling, before the ticket is looked at: its URL may be in a
    // proxy's log, and it must not open a session after.
    const refused = await WireClient.connect(q({ app, proc: 'web', instance: 'not a pod!', ticket }), {}, ['entry.v1']);
    await refused.closed;
    expect(refused.closeMessage()!.code).toBe('ENTRY_BAD_REQUEST');
    const again = await WireClient.connect(q({ app, proc: 'web', instance: '1', ticket }), {}, ['entry.v1']);
    await again.closed;
    expect(again.closeMessage()!.code).toBe('ENTRY_BAD_TOKEN');
    expect(new TextDecoder().decode(again.closeMessage()!.content)).toMatch(/unknown, expired or already used/);
  });

  it('refuses an expired ticket', async () => {
    const short = await startTestBroker();
    try {
      const t = await short.mint({ apps: [app] });
      const res = await fetch(`${short.url}/api/tickets`, { method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: JSON.stringify({ app, proc: 'web', instance: 1 }) });
      const { ticket } = (await res.json()) as { ticket: string };
      // Expire it by moving the store's clock: redeem after its TTL.
      const realNow = Date.now;
      Date.now = () => realNow() + 31_000;
      try {
        const c = await WireClient.connect(`${short.wsUrl}?${new URLSearchParams({ app, proc: 'web', instance: '1', ticket })}`, {}, ['entry.v1']);
        await c.closed;
        expect(new TextDecoder().decode(c.closeMessage()!.content)).toMatch(/expired/);
      } finally {
        Date.now = realNow;
      }
    } finally {
      await short.stop();
    }
  });

  it('will not issue a ticket for an app the token does not grant', async () => {
    const res = await api('/api/tickets', { method: 'POST', body: JSON.stringify({ app: other, proc: 'web', instance: 1 }) });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: string }).error).toBe('ENTRY_FORBIDDEN');
    const noAuth = await fetch(`${b.url}/api/tickets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(noAuth.status).toBe(401);
  });

  it('will not issue a ticket for a target no container can have, as the upgrade would refuse it', async () => {
    for (const instance of [1.5, -1, 1e7, true, null]) {
      const res = await api('/api/tickets', { method: 'POST', body: JSON.stringify({ app, proc: 'web', instance }) });
      expect(res.status, String(instance)).toBe(400);
      const body = (await res.json()) as { error: string; message: string };
      expect(body.error, String(instance)).toBe('ENTRY_BAD_REQUEST');
      expect(body.message, String(instance)).toContain('instance must be a number or a pod name');
    }
    // A whole number, and a pod's name as text, are instances.
    expect((await ticketFor({ app, proc: 'web', instance: 2 })).ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await api('/api/tickets', { method: 'POST', body: JSON.stringify({ app, proc: 'web', instance: 'web-7d4b9c-x2x9q' }) })).status).toBe(200);
  });

  it('refuses a web-mode instance_no that is a number but no instance number, by the same rule', async () => {
    const ws = new WebSocket(`${b.wsUrl}?method=web`);
    const messages: Array<{ msgType?: number; content?: string }> = [];
    ws.on('message', (d: Buffer) => messages.push(JSON.parse(d.toString()) as { msgType?: number; content?: string }));
    await new Promise((r) => ws.once('open', r));
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.send(JSON.stringify({ access_token: token, app_name: app, proc_name: 'web', instance_no: 1.5 }));
    expect(await closed).toBe(4400);
    const close = messages.find((m) => m.msgType === ResponseType.CLOSE);
    expect(Buffer.from(close?.content ?? '', 'base64').toString()).toContain('instance must be a number or a pod name, got 1.5');
  });

  it('accepts the token in the subprotocol list and answers entry.v1 only', async () => {
    const bearer = `entry.bearer.${Buffer.from(token).toString('base64url')}`;
    const c = await runEcho(q({ app, proc: 'web', instance: '1' }), ['entry.v1', bearer]);
    expect(c.ws.protocol).toBe('entry.v1');
    expect(c.stdoutText()).toBe('via-browser\n');
    expect(b.logs.join('\n')).not.toContain(token);
  });

  it('refuses a page from a disallowed Origin at the handshake, allows listed and same origins', async () => {
    const bearer = `entry.bearer.${Buffer.from(token).toString('base64url')}`;
    const url = q({ app, proc: 'web', instance: '1' });
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(url, ['entry.v1', bearer], { origin: 'https://evil.example' });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => undefined);
    });
    expect(status).toBe(403);
    const listed = await runEcho(url, ['entry.v1', bearer], { origin: 'https://console.example' });
    expect(listed.stdoutText()).toBe('via-browser\n');
    const same = await runEcho(url, ['entry.v1', bearer], { origin: b.url });
    expect(same.stdoutText()).toBe('via-browser\n');
    // The same origin, its host name written in another case in the Host header.
    const port = new URL(b.url).port;
    const cased = await runEcho(url, ['entry.v1', bearer], { origin: `http://localhost:${port}`, host: `LocalHost:${port}` });
    expect(cased.stdoutText()).toBe('via-browser\n');
  });

  it('speaks the original ?method=web JSON mode', async () => {
    const ws = new WebSocket(`${b.wsUrl}?method=web`);
    const messages: Array<{ msgType?: number; content?: string }> = [];
    ws.on('message', (d: Buffer) => messages.push(JSON.parse(d.toString()) as { msgType?: number; content?: string }));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ access_token: token, app_name: app, proc_name: 'web', instance_no: '1' }));
    ws.send(JSON.stringify({ msgType: 1, content: Buffer.from('80 24').toString('base64') }));
    for (const ch of 'echo $((6*7)); exit\r') ws.send(JSON.stringify({ content: Buffer.from(ch).toString('base64') }));
    await new Promise((r) => ws.once('close', r));
    const out = messages.filter((m) => (m.msgType ?? 0) === 0).map((m) => Buffer.from(m.content ?? '', 'base64').toString()).join('');
    expect(out).toMatch(/42\r\n/);
    expect(messages.at(-1)!.msgType).toBe(ResponseType.CLOSE);
  });

  it('reads no more than a credentials message from a web-mode caller it does not know yet', async () => {
    const ws = new WebSocket(`${b.wsUrl}?method=web`);
    ws.on('error', () => undefined);
    const messages: Array<{ msgType?: number; content?: string }> = [];
    ws.on('message', (d: Buffer) => messages.push(JSON.parse(d.toString()) as { msgType?: number; content?: string }));
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    await new Promise((r) => ws.once('open', r));
    // One message of 4 MiB (the broker's maxPayload) in 16 KiB fragments, until the broker's
    // close frame comes: ws would gather all of it before the broker saw it is no credentials.
    const fragment = Buffer.alloc(16 * 1024, 0x61);
    let sent = 0;
    while (ws.readyState === WebSocket.OPEN && sent < 4 * 1024 * 1024) {
      await new Promise<void>((r) => ws.send(fragment, { fin: false }, () => r()));
      sent += fragment.length;
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(sent).toBeLessThan(1024 * 1024);
    expect(await closed).toBe(1009);
    const close = messages.find((m) => m.msgType === ResponseType.CLOSE);
    expect(Buffer.from(close?.content ?? '', 'base64').toString()).toContain('the credentials message is over 65536 bytes');
  });

  it('speaks protocol 2 in ?method=web JSON mode: START with the credentials, or after them', async () => {
    for (const startAfterMs of [0, 200]) {
      const ws = new WebSocket(`${b.wsUrl}?method=web`, ['entry.v1']);
      const messages: Array<{ msgType?: number; content?: string; code?: string }> = [];
      ws.on('message', (d: Buffer) => messages.push(JSON.parse(d.toString()) as { msgType?: number; content?: string }));
      await new Promise((r) => ws.once('open', r));
      ws.send(JSON.stringify({ access_token: token, app_name: app, proc_name: 'web', instance_no: '1' }));
      const start = JSON.stringify({ msgType: RequestType.START, content: Buffer.from(encodeExecSpec({ argv: [Buffer.from('echo'), Buffer.from('web-v2')] })).toString('base64') });
      if (startAfterMs === 0) ws.send(start);
      else setTimeout(() => ws.send(start), startAfterMs);
      await new Promise((r) => ws.once('close', r));
      const out = messages.filter((m) => (m.msgType ?? 0) === ResponseType.STDOUT).map((m) => Buffer.from(m.content ?? '', 'base64').toString()).join('');
      expect(out, `START ${startAfterMs} ms after the credentials`).toBe('web-v2\n');
      expect(messages.some((m) => m.msgType === ResponseType.EXIT), `START ${startAfterMs} ms after the credentials`).toBe(true);
    }
  });

  it('lists only the containers the caller may enter', async () => {
    const res = await api('/api/containers');
    const body = (await res.json()) as { containers: Array<{ app: string; proc: string; instance: string; state: string; image: string }> };
    const mine = body.containers.filter((c) => c.app === app);
    expect(mine.map((c) => c.instance)).toEqual(['1', '2']);
    expect(mine[0]).toMatchObject({ proc: 'web', state: 'running', image: 'entry-demo:latest' });
    expect(body.containers.some((c) => c.app === other)).toBe(false);
    const who = (await (await api('/api/whoami')).json()) as { user: string; apps: string[] };
    expect(who).toMatchObject({ user: 'alice', apps: [app] });
  });
});

describe('cross-origin access for allowed console origins', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startTestBroker({ 'allowed-origin': ['https://console.example'] });
  });
  afterAll(() => b.stop());

  it('answers preflights and sets CORS headers for allowed origins only, and serves the console with a CSP', async () => {
    const pre = await fetch(`${b.url}/api/tickets`, { method: 'OPTIONS', headers: { origin: 'https://console.example', 'access-control-request-method': 'POST' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://console.example');
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/authorization/);
    const evil = await fetch(`${b.url}/api/whoami`, { headers: { origin: 'https://evil.example', authorization: `Bearer ${await b.mint()}` } });
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const ok = await fetch(`${b.url}/api/whoami`, { headers: { origin: 'https://console.example', authorization: `Bearer ${await b.mint()}` } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://console.example');
    const page = await fetch(`${b.url}/`);
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/default-src 'self'/);
    // Not covered by default-src: where the page's relative URLs and its forms may lead.
    expect(csp).toMatch(/base-uri 'none'/);
    expect(csp).toMatch(/form-action 'none'/);
    expect(csp).toMatch(/object-src 'none'/);
  });
});

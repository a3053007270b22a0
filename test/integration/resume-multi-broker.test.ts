import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../broker/audit/events.js';
import type WebSocket from 'ws';
import { spawn } from '../../client/api.js';
import { ExecConnection } from '../../client/protocol/connection.js';
import { decodeResumeTicket, encodeExecSpec, encodeRequest, encodeResumeRequest, RequestType, ResponseType } from '../../proto/codec.js';
import { type BrokerProcess, makeSigningKey, startBrokerProcess } from '../helpers/broker-process.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { TestRedis } from '../helpers/redis.js';
import { eventually } from '../helpers/sessions.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { TestNginx } from '../helpers/nginx.js';
import { launchChromium, mountTerminal, typeLine, waitForTerminal } from '../helpers/browser.js';
import { WireClient } from '../helpers/wire-client.js';

/**
 * Two brokers sharing Redis behind a proxy that sends each new connection where the test says:
 * a session starts on A, the link is reset and kept down, and the reconnect lands on B, which
 * finds in the registry that A holds the session and hands the upgrade to A's advertised URL.
 */

const LINES = 40;
const SCRIPT = `for i in $(seq 1 ${LINES}); do echo "line $i"; sleep 0.25; done; exit 7`;
const expected = Array.from({ length: LINES }, (_, i) => `line ${i + 1}\n`).join('');
const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');
const logged = (b: BrokerProcess, msg: string) => b.logs.filter((l) => l.includes(`"msg":"${msg}"`));

describe('a resume that lands on another broker', () => {
  const containers = new TestContainers();
  const redis = new TestRedis();
  const app = uniqueApp('rmb');
  const key = makeSigningKey();
  const target = { app, proc: 'web', instance: 1 };
  let a: BrokerProcess;
  let b: BrokerProcess;
  let proxy: TcpProxy;

  // The brokers trust each other's X-Forwarded-For (loopback here), so the source stays the client's.
  const flags = () => ['--redis-url', redis.url, '--kill-grace', '300', '--trusted-proxy', '127.0.0.1/32'];

  beforeAll(async () => {
    await redis.start();
    await containers.entry(app, 'web', 1);
    [a, b] = await Promise.all([startBrokerProcess(flags(), {}, key), startBrokerProcess(flags(), {}, key)]);
    proxy = new TcpProxy(a.url);
    await proxy.start();
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
    await redis.stop();
    await containers.removeAll();
  });

  const audit = async (base: string, admin: string, query: string) => {
    const res = await fetch(`${base}/api/audit?${query}`, { headers: { authorization: `Bearer ${admin}` } });
    return ((await res.json()) as { events: AuditEvent[] }).events;
  };

  it('40 lines over 10 s, the reconnect sent to B: each line once, exit 7, one session with session.resumed via B', async () => {
    proxy.to(a.url);
    const token = await a.mint({ apps: [app] }, 'roamer');
    const conn = await ExecConnection.open({ broker: proxy.url, token, target, resume: true, spec: { argv: ['sh', '-c', SCRIPT].map((s) => Buffer.from(s)) } });
    let out = '';
    let cutAt = 0;
    let backAt = 0;
    conn.on('stdout', (d: Buffer) => {
      out += d.toString();
      if (!cutAt && out.includes('line 12\n')) {
        cutAt = Date.now();
        proxy.cut(2_000);
        proxy.to(b.url);
      }
    });
    conn.on('resumed', () => (backAt = Date.now()));
    const end = await conn.done;
    expect(out).toBe(expected);
    expect(end.exitCode).toBe(7);
    expect(backAt - cutAt).toBeGreaterThan(1_900);
    console.log(`resume across brokers: back ${backAt - cutAt} ms after the cut (link down 2000 ms)`);

    const admin = await a.mint({ roles: ['entry-admin'] }, 'mb-admin');
    const starts = (await audit(b.url, admin, 'type=session.start&user=roamer')).filter((e) => e.app === app);
    expect(starts.length).toBe(1);
    expect(starts[0]!.broker).toBe(a.id);
    await eventually(async () => (await audit(b.url, admin, `session=${starts[0]!.sessionId}&type=session.end`)).length === 1, 'session.end');
    const resumed = await audit(b.url, admin, `session=${starts[0]!.sessionId}&type=session.resumed`);
    expect(resumed).toMatchObject([{ broker: a.id, via: b.id, source: '127.0.0.1', user: 'roamer' }]);
    expect(b.logs.some((l) => l.includes('resume forwarded'))).toBe(true);
  }, 60_000);

  it("a client's own entry-forwarded-by does not keep its resume from being handed on; the same marking from a trusted peer is never handed on again", async () => {
    const token = await a.mint({ apps: [app] }, 'self-marker');
    const headers = { 'access-token': token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2' };
    // 127.0.0.2: not among the trusted proxies (127.0.0.1, the brokers' own hops).
    const client = { localAddress: '127.0.0.2' };
    const owner = await WireClient.connect(a.wsUrl, headers, [], client);
    owner.send(RequestType.START, encodeExecSpec({ argv: ['sh', '-c', 'echo up; sleep 1046'].map((s) => Buffer.from(s)), resumable: true }));
    await owner.waitFor(() => owner.stdoutText() === 'up\n', 'the session');
    const ticket = decodeResumeTicket(owner.messages.find((m) => m.msgType === ResponseType.RESUMABLE)!.content);
    owner.ws.terminate();
    const admin = await a.mint({ roles: ['entry-admin'] }, 'marker-admin');
    const listed = async () => ((await (await fetch(`${b.url}/api/sessions`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { sessions: Array<{ id: string }> }).sessions;
    await eventually(async () => (await listed()).some((x) => x.id === ticket.session), 'the session listed');
    const resumeAtB = async (from: WebSocket.ClientOptions) => {
      const c = await WireClient.connect(b.wsUrl, { ...headers, 'entry-forwarded-by': 'mallory-broker', 'entry-resume': ticket.session }, [], from);
      c.ws.send(encodeRequest(RequestType.RESUME, encodeResumeRequest({ token: ticket.token, outputOffset: 3 })));
      await c.waitFor(() => c.messages.some((m) => m.msgType === ResponseType.RESUMABLE || m.msgType === ResponseType.CLOSE), 'an answer');
      return c;
    };
    const forwardedHere = () => logged(b, 'resume forwarded').filter((l) => l.includes(ticket.session)).length;
    // From a trusted peer's address the marking holds: B answers itself (A's session is not
    // here), and the upgrade goes no further.
    const fromPeer = await resumeAtB({ localAddress: '127.0.0.1' });
    expect(fromPeer.closeMessage(), 'B refused it').toBeDefined();
    expect(forwardedHere()).toBe(0);
    await fromPeer.closed;
    // From the client, ignored: B hands the resume to A, marked as B's.
    const fromClient = await resumeAtB(client);
    expect(fromClient.closeMessage()).toBeUndefined();
    expect(forwardedHere()).toBe(1);
    const line = () => logged(a, 'session resumed').find((l) => l.includes(ticket.session));
    await eventually(async () => line() !== undefined, 'the resume logged', 5_000);
    expect(JSON.parse(line()!)).toMatchObject({ via: b.id, remote: '127.0.0.2' });
    fromClient.ws.close(1000);
    await fromClient.closed;
  }, 30_000);

  it("nginx as deploy/README.md sets it up, a trusted proxy: a client's entry-forwarded-by does not reach the holder, which records no broker the resume came through", async () => {
    const nginx = new TestNginx();
    await nginx.start([a.url]);
    let resumed: WireClient | undefined;
    try {
      const token = await a.mint({ apps: [app] }, 'nginx-marker');
      const headers = { 'access-token': token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2' };
      const owner = await WireClient.connect(a.wsUrl, headers);
      owner.send(RequestType.START, encodeExecSpec({ argv: ['sh', '-c', 'echo up; sleep 1048'].map((s) => Buffer.from(s)), resumable: true }));
      await owner.waitFor(() => owner.stdoutText() === 'up\n', 'the session');
      const ticket = decodeResumeTicket(owner.messages.find((m) => m.msgType === ResponseType.RESUMABLE)!.content);
      owner.ws.terminate();
      resumed = await WireClient.connect(`${nginx.url.replace(/^http/, 'ws')}/enter`, { ...headers, 'entry-forwarded-by': 'mallory-broker', 'entry-resume': ticket.session });
      resumed.ws.send(encodeRequest(RequestType.RESUME, encodeResumeRequest({ token: ticket.token, outputOffset: 3 })));
      const r = resumed;
      await r.waitFor(() => r.messages.some((m) => m.msgType === ResponseType.RESUMABLE), 'the resume');
      const line = () => logged(a, 'session resumed').find((l) => l.includes(ticket.session));
      await eventually(async () => line() !== undefined, 'the resume logged', 5_000);
      expect(JSON.parse(line()!)).not.toHaveProperty('via');
    } finally {
      // nginx stops once its connections are gone.
      resumed?.ws.terminate();
      await nginx.stop();
    }
  }, 30_000);

  it('a command that exits while the link is down, the reconnect sent to B: the rest of its output and exit 5', async () => {
    proxy.to(a.url);
    const token = await a.mint({ apps: [app] }, 'roamer3');
    const conn = await ExecConnection.open({ broker: proxy.url, token, target, resume: true, spec: { argv: ['sh', '-c', 'echo start; sleep 1; echo done; exit 5'].map((s) => Buffer.from(s)) } });
    let out = '';
    conn.on('stdout', (d: Buffer) => {
      out += d.toString();
      if (out === 'start\n') {
        proxy.cut(2_500);
        proxy.to(b.url);
      }
    });
    const end = await conn.done;
    expect(out).toBe('start\ndone\n');
    expect(end.exitCode).toBe(5);
  }, 30_000);

  it('<entry-terminal> in Chromium, the reconnect sent to B: the same shell, its variable, each line of a running loop once', async () => {
    proxy.to(a.url);
    const token = await a.mint({ apps: [app] }, 'browser-roamer');
    const browser = await launchChromium();
    try {
      const page = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage();
      await page.goto(`${proxy.url}/healthz`);
      await mountTerminal(page, app, token);
      await typeLine(page, '#t', 'KEPT=roam-$((6*7)); for i in $(seq 1 8); do echo "tick $i"; sleep 0.5; done');
      await waitForTerminal(page, '#t', /^tick 2$/m);
      // B has forwarded resumes for the tests before: only one more counts for this one.
      const forwarded = () => b.logs.filter((l) => l.includes('resume forwarded')).length;
      const before = forwarded();
      proxy.cut(2_000);
      proxy.to(b.url);
      await page.locator('#t .entry-terminal-overlay').waitFor({ state: 'visible', timeout: 5_000 });
      await page.locator('#t .entry-terminal-overlay').waitFor({ state: 'detached', timeout: 20_000 });
      await waitForTerminal(page, '#t', /^tick 8$/m);
      await typeLine(page, '#t', 'echo "kept:$KEPT"');
      const text = await waitForTerminal(page, '#t', /^kept:roam-42$/m);
      for (let i = 1; i <= 8; i++) expect(text.match(new RegExp(`^tick ${i}$`, 'gm'))?.length, `tick ${i}`).toBe(1);
      expect(forwarded()).toBeGreaterThan(before);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('seq 1 2000000 with the reconnect sent to B, and the TypeScript API: checksum equal, exit 0', async () => {
    proxy.to(a.url);
    const token = await a.mint({ apps: [app] }, 'roamer2');
    let flipped = false;
    const proc = await spawn({ broker: proxy.url, token, target, command: ['seq', '1', '2000000'] });
    const chunks: Buffer[] = [];
    let bytes = 0;
    proc.stdout.on('data', (c: Buffer) => {
      chunks.push(c);
      bytes += c.length;
      if (!flipped && bytes > 3_000_000) {
        flipped = true;
        proxy.cut(500);
        proxy.to(b.url);
      }
    });
    const exitCode = await proc.wait();
    await new Promise((r) => setImmediate(r));
    const result = { stdout: Buffer.concat(chunks), exitCode };
    let want = '';
    for (let i = 1; i <= 2_000_000; i++) want += `${i}\n`;
    expect(flipped).toBe(true);
    expect(result.stdout.length).toBe(Buffer.byteLength(want));
    expect(md5(result.stdout)).toBe(md5(want));
    expect(result.exitCode).toBe(0);
  }, 60_000);
});

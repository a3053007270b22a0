import { readFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../broker/audit/events.js';
import { ExecConnection } from '../../client/protocol/connection.js';
import type { ClientTls } from '../../client/protocol/tls.js';
import { decodeResumeTicket, encodeExecSpec, encodeRequest, encodeResumeRequest, RequestType, ResponseType } from '../../proto/codec.js';
import { type BrokerProcess, makeSigningKey, startBrokerProcess } from '../helpers/broker-process.js';
import { type CertFiles, issue, makeCa, type TestCa } from '../helpers/certs.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { TestRedis } from '../helpers/redis.js';
import { eventually } from '../helpers/sessions.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { launchChromium, mountTerminal, typeLine, waitForTerminal } from '../helpers/browser.js';
import { WireClient } from '../helpers/wire-client.js';

/**
 * Brokers sharing Redis, each serving HTTPS with a certificate from a private CA, behind a
 * proxy that sends each new connection where the test says: a session starts on A, the link is
 * reset and kept down, and the reconnect lands on another broker, which hands it to A over TLS.
 */

const SCRIPT = 'echo start; sleep 1; echo done; exit 5';
const sans = ['localhost', '127.0.0.1'];

const logged = (b: BrokerProcess, msg: string) => b.logs.filter((l) => l.includes(`"msg":"${msg}"`));

/**
 * Once `via` has refused `count` more hand-offs for TLS, the proxy sends the next connection to
 * `holder`, as a load balancer may; resolves whether it came to that.
 */
function backToHolderAfterRefusals(proxy: TcpProxy, holder: BrokerProcess, via: BrokerProcess, count: number): Promise<boolean> {
  const before = logged(via, 'resume not forwarded: TLS').length;
  return eventually(async () => logged(via, 'resume not forwarded: TLS').length >= before + count, `${count} hand-offs refused`, 20_000).then(
    () => {
      proxy.to(holder.url);
      return true;
    },
    () => false,
  );
}

/**
 * Starts a resumable command on `holder` through the proxy, cuts the link after its first line
 * and sends the reconnect to `via`; with `backAfter`, the tries after that many refused by `via` go to `holder`.
 */
async function resumeThrough(proxy: TcpProxy, holder: BrokerProcess, via: BrokerProcess, tls: ClientTls, app: string, user: string, backAfter = 0) {
  proxy.to(holder.url);
  const token = await holder.mint({ apps: [app] }, user);
  const conn = await ExecConnection.open({
    broker: `https://127.0.0.1:${proxy.port}`,
    token,
    tls,
    target: { app, proc: 'web', instance: 1 },
    resume: true,
    spec: { argv: ['sh', '-c', SCRIPT].map((s) => Buffer.from(s)) },
  });
  let out = '';
  let cutAt = 0;
  let backAt = 0;
  let tries = 0;
  let back: Promise<boolean> = Promise.resolve(false);
  conn.on('stdout', (d: Buffer) => {
    out += d.toString();
    if (out === 'start\n') {
      cutAt = Date.now();
      proxy.cut(2_000);
      proxy.to(via.url);
      if (backAfter) back = backToHolderAfterRefusals(proxy, holder, via, backAfter);
    }
  });
  conn.on('reconnecting', () => tries++);
  conn.on('resumed', () => (backAt = Date.now()));
  const end = await conn.done;
  return { out, end, backMs: backAt ? backAt - cutAt : undefined, tries, wentBack: await back };
}

/**
 * A session on `holder` whose client went, resumed through the load balancer (`proxy`, a trusted
 * address) with `client`'s certificate and headers forged to say `named` handed it on for
 * mallory. What the holder logged of the resume.
 */
async function forgedResume(proxy: TcpProxy, holder: BrokerProcess, named: BrokerProcess, client: CertFiles, ca: string, app: string, user: string) {
  proxy.to(holder.url);
  const options = { ca: readFileSync(ca), cert: readFileSync(client.cert), key: readFileSync(client.key) };
  const token = await holder.mint({ apps: [app] }, user);
  const headers = { 'access-token': token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2' };
  const owner = await WireClient.connect(holder.wsUrl, headers, [], options);
  owner.send(RequestType.START, encodeExecSpec({ argv: ['sh', '-c', 'echo up; sleep 1045'].map((s) => Buffer.from(s)), resumable: true }));
  await owner.waitFor(() => owner.stdoutText() === 'up\n', 'the session');
  const ticket = decodeResumeTicket(owner.messages.find((m) => m.msgType === ResponseType.RESUMABLE)!.content);
  owner.ws.terminate();
  const forged = { 'entry-forwarded-by': named.id, 'entry-forwarded-client-cert': 'CN%3Dmallory', 'entry-resume': ticket.session };
  const resumed = await WireClient.connect(`wss://127.0.0.1:${proxy.port}/enter`, { ...headers, ...forged }, [], options);
  resumed.ws.send(encodeRequest(RequestType.RESUME, encodeResumeRequest({ token: ticket.token, outputOffset: 3 })));
  await resumed.waitFor(() => resumed.messages.some((m) => m.msgType === ResponseType.RESUMABLE), 'the resume');
  const line = () => logged(holder, 'session resumed').find((l) => l.includes(ticket.session));
  await eventually(async () => line() !== undefined, 'the resume logged', 5_000);
  return { session: ticket.session, resumed, options, logged: JSON.parse(line()!) as Record<string, unknown> };
}

describe('a resume handed to another broker over TLS with a private CA', () => {
  const containers = new TestContainers();
  const redis = new TestRedis();
  const app = uniqueApp('rmt');
  const key = makeSigningKey();
  let ca: TestCa;
  let a: BrokerProcess;
  let b: BrokerProcess;
  let c: BrokerProcess;
  let proxy: TcpProxy;

  const flags = (cert: CertFiles) => ['--redis-url', redis.url, '--kill-grace', '300', '--trusted-proxy', '127.0.0.1/32', '--tls-cert', cert.cert, '--tls-key', cert.key];

  beforeAll(async () => {
    await redis.start();
    await containers.entry(app, 'web', 1);
    ca = makeCa('Entry Fleet CA');
    const [ca_, cb, cc] = ['broker-a', 'broker-b', 'broker-c'].map((name) => issue(ca, 'localhost', { sans, name }));
    [a, b, c] = await Promise.all([
      startBrokerProcess([...flags(ca_!), '--peer-ca', ca.cert], {}, key),
      startBrokerProcess([...flags(cb!), '--peer-ca', ca.cert], {}, key),
      // Trusts the system's CAs only: the fleet's private CA is not among them.
      startBrokerProcess(flags(cc!), {}, key),
    ]);
    proxy = new TcpProxy(a.url);
    await proxy.start();
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
    await redis.stop();
    await containers.removeAll();
  });

  it('B trusts --peer-ca: the reconnect sent to B reaches A over TLS, the rest of the output and exit 5', async () => {
    const { out, end, backMs } = await resumeThrough(proxy, a, b, { ca: readFileSync(ca.cert) }, app, 'tls-roamer');
    expect(end.code).toBe('');
    console.log(`resume across TLS brokers: back ${backMs} ms after the cut (link down 2000 ms)`);
    expect(out).toBe('start\ndone\n');
    expect(end.exitCode).toBe(5);
    expect(logged(b, 'resume forwarded').length).toBe(1);
    await eventually(async () => logged(a, 'session resumed').some((l) => l.includes(`"via":"${b.id}"`)), "A's session resumed via B", 2_000);
  }, 30_000);

  it('C does not trust the private CA: C refuses the hand-off (ENTRY_HANDOFF_REFUSED) and logs why; the client tries again, and once a try reaches A the session comes back whole', async () => {
    const { out, end, tries, wentBack } = await resumeThrough(proxy, a, c, { ca: readFileSync(ca.cert) }, app, 'tls-stranded', 2);
    expect(wentBack, 'C refused two tries').toBe(true);
    expect(end.code).toBe('');
    expect(out).toBe('start\ndone\n');
    expect(end.exitCode).toBe(5);
    expect(tries).toBeGreaterThanOrEqual(3);
    expect(logged(c, 'upgrade refused').some((l) => l.includes('"code":"ENTRY_HANDOFF_REFUSED"'))).toBe(true);
    const why = logged(c, 'resume not forwarded: TLS');
    expect(why.length).toBeGreaterThan(0);
    expect(why[0]).toMatch(/certificate/i);
    expect(why[0]).toMatch(/--peer-ca/);
    console.log(`hand-off refused, C logs: ${(JSON.parse(why[0]!) as { reason: string }).reason}`);
    // A token is never in a log line.
    expect(c.logs.some((l) => l.includes('eyJ'))).toBe(false);
  }, 30_000);

  it("a client certificate named in the headers of a connection that showed none is not believed, even from a trusted proxy's address", async () => {
    // From 127.0.0.1, a trusted proxy here: as a proxy in front passing on what its client wrote.
    const token = await a.mint({ apps: [app] }, 'tls-claimant');
    const headers = { 'access-token': token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2' };
    const options = { ca: readFileSync(ca.cert) };
    const owner = await WireClient.connect(a.wsUrl, headers, [], options);
    owner.send(RequestType.START, encodeExecSpec({ argv: ['sh', '-c', 'echo up; sleep 1044'].map((s) => Buffer.from(s)), resumable: true }));
    await owner.waitFor(() => owner.stdoutText() === 'up\n', 'the session');
    const ticket = decodeResumeTicket(owner.messages.find((m) => m.msgType === ResponseType.RESUMABLE)!.content);
    owner.ws.terminate();
    const forged = { 'entry-forwarded-by': b.id, 'entry-forwarded-client-cert': 'CN%3Dmallory', 'entry-resume': ticket.session };
    const resumed = await WireClient.connect(a.wsUrl, { ...headers, ...forged }, [], options);
    resumed.ws.send(encodeRequest(RequestType.RESUME, encodeResumeRequest({ token: ticket.token, outputOffset: 3 })));
    await resumed.waitFor(() => resumed.messages.some((m) => m.msgType === ResponseType.RESUMABLE), 'the resume');
    const line = () => logged(a, 'session resumed').find((l) => l.includes(ticket.session));
    await eventually(async () => line() !== undefined, 'the resume logged', 5_000);
    expect(JSON.parse(line()!)).not.toHaveProperty('clientCert');
    resumed.ws.close(1000);
    await resumed.closed;
  }, 30_000);

  it('<entry-terminal> in Chromium: C refuses the hand-off, the terminal keeps reconnecting, and once a try reaches A each line of a running loop comes once', async () => {
    proxy.to(a.url);
    const token = await a.mint({ apps: [app] }, 'tls-browser');
    const browser = await launchChromium();
    try {
      // The fleet's private CA is not the browser's: its certificate errors are let pass, as a trusted CA would.
      const page = await (await browser.newContext({ viewport: { width: 1000, height: 700 }, ignoreHTTPSErrors: true })).newPage();
      await page.goto(`https://127.0.0.1:${proxy.port}/healthz`);
      await mountTerminal(page, app, token, { recordStates: true });
      await typeLine(page, '#t', 'for i in $(seq 1 10); do echo "tick $i"; sleep 0.5; done');
      await waitForTerminal(page, '#t', /^tick 2$/m);
      proxy.cut();
      proxy.to(c.url);
      expect(await backToHolderAfterRefusals(proxy, a, c, 2), 'C refused two tries').toBe(true);
      const text = await waitForTerminal(page, '#t', /^tick 10$/m);
      for (let i = 1; i <= 10; i++) expect(text.match(new RegExp(`^tick ${i}$`, 'gm'))?.length, `tick ${i}`).toBe(1);
      expect(text).not.toContain('not handed on');
      expect(await page.evaluate('window.states')).toEqual(['connecting', 'open', 'reconnecting', 'open']);
    } finally {
      await browser.close();
    }
  }, 60_000);
});

describe('a resume handed to another broker under mTLS', () => {
  const containers = new TestContainers();
  const redis = new TestRedis();
  const app = uniqueApp('rmm');
  const key = makeSigningKey();
  let fleet: TestCa;
  let alice: CertFiles;
  let alicePhone: CertFiles;
  let a: BrokerProcess;
  let b: BrokerProcess;
  let c: BrokerProcess;
  let proxy: TcpProxy;

  const flags = (cert: CertFiles) => ['--redis-url', redis.url, '--kill-grace', '300', '--trusted-proxy', '127.0.0.1/32', '--tls-cert', cert.cert, '--tls-key', cert.key, '--tls-client-ca', fleet.cert];

  beforeAll(async () => {
    await redis.start();
    await containers.entry(app, 'web', 1);
    // One CA for the fleet: it signs the brokers' certificates and the people's.
    fleet = makeCa('Entry Fleet CA');
    alice = issue(fleet, 'alice-laptop', { client: true });
    alicePhone = issue(fleet, 'alice-phone', { client: true });
    const ca_ = issue(fleet, 'broker-a', { sans, both: true });
    const cb = issue(fleet, 'broker-b', { sans, both: true });
    // A server certificate only (no clientAuth): the holder refuses it as a client's.
    const cc = issue(fleet, 'broker-c', { sans });
    // Nothing but the listener's own settings: the peer CA and certificate follow from them.
    [a, b, c] = await Promise.all([startBrokerProcess(flags(ca_), {}, key), startBrokerProcess(flags(cb), {}, key), startBrokerProcess(flags(cc), {}, key)]);
    proxy = new TcpProxy(a.url);
    await proxy.start();
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
    await redis.stop();
    await containers.removeAll();
  });

  const tls = (): ClientTls => ({ ca: readFileSync(fleet.cert), cert: readFileSync(alice.cert), key: readFileSync(alice.key) });

  it('B presents its own certificate to A: the rest of the output and exit 5; A logs the session with alice and via B', async () => {
    const { out, end, backMs } = await resumeThrough(proxy, a, b, tls(), app, 'mtls-roamer');
    expect(end.code).toBe('');
    console.log(`resume across mTLS brokers: back ${backMs} ms after the cut (link down 2000 ms)`);
    expect(out).toBe('start\ndone\n');
    expect(end.exitCode).toBe(5);
    // B saw alice's certificate and says so; A sees only B's on the hop, and B names alice's to it.
    expect(logged(b, 'resume forwarded').some((l) => l.includes('"clientCert":"CN=alice-laptop"'))).toBe(true);
    await eventually(async () => logged(a, 'session resumed').some((l) => l.includes(`"via":"${b.id}"`) && l.includes('"clientCert":"CN=alice-laptop"')), "A's session resumed via B", 2_000);
  }, 30_000);

  it("the holder records the resuming client's address and certificate, not B's, and ignores the same headers from the client", async () => {
    // The client connects from 127.0.0.2: not among the trusted proxies (127.0.0.1, the brokers' own hops).
    const from = (cert: CertFiles) => ({ ca: readFileSync(fleet.cert), cert: readFileSync(cert.cert), key: readFileSync(cert.key), localAddress: '127.0.0.2' });
    const token = await a.mint({ apps: [app] }, 'mtls-witness');
    const headers = { 'access-token': token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2' };
    // What a client could write to pass for another person, and for a broker handing it on.
    const forged = { 'entry-forwarded-by': 'mallory-broker', 'entry-forwarded-client-cert': 'CN%3Dmallory', 'x-forwarded-for': '203.0.113.9' };
    const owner = await WireClient.connect(a.wsUrl, headers, [], from(alice));
    owner.send(RequestType.START, encodeExecSpec({ argv: ['sh', '-c', 'echo up; sleep 1043'].map((s) => Buffer.from(s)), resumable: true }));
    await owner.waitFor(() => owner.stdoutText() === 'up\n', 'the session');
    const ticket = decodeResumeTicket(owner.messages.find((m) => m.msgType === ResponseType.RESUMABLE)!.content);
    const resumeWith = async (url: string, cert: CertFiles) => {
      const c = await WireClient.connect(url, { ...headers, ...forged, 'entry-resume': ticket.session }, [], from(cert));
      c.ws.send(encodeRequest(RequestType.RESUME, encodeResumeRequest({ token: ticket.token, outputOffset: 3 })));
      await c.waitFor(() => c.messages.some((m) => m.msgType === ResponseType.RESUMABLE), 'the resume');
      return c;
    };
    const admin = await a.mint({ roles: ['entry-admin'] }, 'boss');
    const api = <T>(broker: BrokerProcess, path: string) =>
      new Promise<T>((resolve, reject) => {
        httpsGet(`${broker.url}${path}`, { ...from(alice), agent: false, headers: { authorization: `Bearer ${admin}` } }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve(JSON.parse(body) as T));
        }).on('error', reject);
      });
    const audit = async () => (await api<{ events: AuditEvent[] }>(a, `/api/audit?session=${ticket.session}&type=session.resumed`)).events;
    const resumedLines = () => logged(a, 'session resumed').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['session'] === ticket.session);
    owner.ws.terminate();
    // Through B, with another of alice's certificates: A names it and the client's address.
    // Listed in the shared store first: B learns there that A holds it.
    await eventually(async () => (await api<{ sessions: Array<{ id: string }> }>(b, '/api/sessions')).sessions.some((x) => x.id === ticket.session), 'the session listed');
    const viaB = await resumeWith(b.wsUrl, alicePhone);
    await eventually(async () => resumedLines().length === 1, 'the resume through B', 5_000);
    expect(resumedLines()[0]).toMatchObject({ remote: '127.0.0.2', clientCert: 'CN=alice-phone', via: b.id });
    expect(logged(b, 'resume forwarded').some((l) => l.includes(ticket.session) && l.includes('"clientCert":"CN=alice-phone"'))).toBe(true);
    // Straight to A, the same headers: ignored, as from any peer that is not a trusted proxy.
    viaB.ws.terminate();
    const direct = await resumeWith(a.wsUrl, alice);
    await eventually(async () => resumedLines().length === 2, 'the resume straight to A', 5_000);
    expect(resumedLines()[1]).toMatchObject({ remote: '127.0.0.2', clientCert: 'CN=alice-laptop' });
    expect(resumedLines()[1]).not.toHaveProperty('via');
    direct.ws.close(1000);
    await direct.closed;
    await eventually(async () => (await audit()).length === 2, 'two session.resumed events');
    const events = (await audit()).sort((x, y) => x.time.localeCompare(y.time));
    expect(events).toMatchObject([
      { broker: a.id, via: b.id, source: '127.0.0.2', clientCert: 'CN=alice-phone' },
      { broker: a.id, source: '127.0.0.2', clientCert: 'CN=alice-laptop' },
    ]);
    expect(events[1]).not.toHaveProperty('via');
  }, 30_000);

  it("a person's certificate through a trusted pass-through load balancer: the holder logs and audits that certificate, not the one it names, and no broker it came through", async () => {
    // The proxy passes TCP through from 127.0.0.1, a trusted proxy here, as the brokers' own hops
    // are: only the certificate tells alice's hop from B's (B's holds 127.0.0.1, alice's does not).
    const { session, resumed, options, logged: line } = await forgedResume(proxy, a, b, alice, fleet.cert, app, 'mtls-lb-claimant');
    expect(line).toMatchObject({ clientCert: 'CN=alice-laptop' });
    expect(line).not.toHaveProperty('via');
    expect(logged(a, "forwarded headers not believed: the hop's certificate is not a broker's").some((l) => l.includes('"clientCert":"CN=alice-laptop"'))).toBe(true);
    const admin = await a.mint({ roles: ['entry-admin'] }, 'mtls-lb-boss');
    const audit = () =>
      new Promise<AuditEvent[]>((resolve, reject) => {
        httpsGet(`${a.url}/api/audit?session=${session}&type=session.resumed`, { ...options, agent: false, headers: { authorization: `Bearer ${admin}` } }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve((JSON.parse(body) as { events: AuditEvent[] }).events));
        }).on('error', reject);
      });
    await eventually(async () => (await audit()).length === 1, 'session.resumed');
    const events = await audit();
    expect(events).toMatchObject([{ broker: a.id, clientCert: 'CN=alice-laptop' }]);
    expect(events[0]).not.toHaveProperty('via');
    resumed.ws.close(1000);
    await resumed.closed;
  }, 30_000);

  it('C presents a certificate without clientAuth: warned at start; C refuses the hand-off and logs why, the client tries again until a try reaches A', async () => {
    expect(c.logs.some((l) => l.includes('clientAuth') && l.includes('"level":"warn"'))).toBe(true);
    const { out, end, wentBack } = await resumeThrough(proxy, a, c, tls(), app, 'mtls-stranded', 2);
    expect(wentBack, 'C refused two tries').toBe(true);
    expect(end.code).toBe('');
    expect(out).toBe('start\ndone\n');
    expect(end.exitCode).toBe(5);
    const why = logged(c, 'resume not forwarded: TLS');
    expect(why.length).toBeGreaterThan(0);
    expect(why[0]).toMatch(/refused this broker's certificate/);
    expect(why[0]).toMatch(/clientAuth/);
    console.log(`hand-off refused under mTLS, C logs: ${(JSON.parse(why[0]!) as { reason: string }).reason}`);
  }, 30_000);
});

describe('a resume handed to another broker under mTLS, the brokers sharing a certificate (--peer-name)', () => {
  const containers = new TestContainers();
  const redis = new TestRedis();
  const app = uniqueApp('rmn');
  const key = makeSigningKey();
  let fleet: TestCa;
  let alice: CertFiles;
  let kiosk: CertFiles;
  let a: BrokerProcess;
  let b: BrokerProcess;
  let proxy: TcpProxy;

  beforeAll(async () => {
    await redis.start();
    await containers.entry(app, 'web', 1);
    fleet = makeCa('Entry Shared Fleet CA');
    alice = issue(fleet, 'alice-laptop', { client: true });
    // A person's device whose certificate holds the address every hop here comes from: only --peer-name tells it from the brokers'.
    kiosk = issue(fleet, 'kiosk', { sans: ['127.0.0.1'], client: true });
    const shared = issue(fleet, 'entry.fleet.test', { sans: ['entry.fleet.test', ...sans], both: true });
    const flags = ['--redis-url', redis.url, '--kill-grace', '300', '--trusted-proxy', '127.0.0.1/32', '--tls-cert', shared.cert, '--tls-key', shared.key, '--tls-client-ca', fleet.cert, '--peer-name', 'entry.fleet.test'];
    [a, b] = await Promise.all([startBrokerProcess(flags, {}, key), startBrokerProcess(flags, {}, key)]);
    proxy = new TcpProxy(a.url);
    await proxy.start();
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
    await redis.stop();
    await containers.removeAll();
  });

  it("B's certificate holds --peer-name: A believes the client's certificate B names, and B", async () => {
    const { out, end } = await resumeThrough(proxy, a, b, { ca: readFileSync(fleet.cert), cert: readFileSync(alice.cert), key: readFileSync(alice.key) }, app, 'shared-roamer');
    expect(end.code).toBe('');
    expect(out).toBe('start\ndone\n');
    await eventually(async () => logged(a, 'session resumed').some((l) => l.includes(`"via":"${b.id}"`) && l.includes('"clientCert":"CN=alice-laptop"')), "A's session resumed via B", 2_000);
  }, 30_000);

  it("a device's certificate through the trusted load balancer, holding its address but not --peer-name: A logs that certificate, not the one it names", async () => {
    const { resumed, logged: line } = await forgedResume(proxy, a, b, kiosk, fleet.cert, app, 'kiosk-claimant');
    expect(line).toMatchObject({ clientCert: 'CN=kiosk' });
    expect(line).not.toHaveProperty('via');
    expect(logged(a, "forwarded headers not believed: the hop's certificate is not a broker's").some((l) => l.includes('"needs":"--peer-name entry.fleet.test"'))).toBe(true);
    resumed.ws.close(1000);
    await resumed.closed;
  }, 30_000);
});

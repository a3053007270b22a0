import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecConnection } from '../../client/protocol/connection.js';
import type { ClientTls } from '../../client/protocol/tls.js';
import { type BrokerProcess, makeSigningKey, startBrokerProcess } from '../helpers/broker-process.js';
import { type CertFiles, issue, makeCa, type TestCa } from '../helpers/certs.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { TestRedis } from '../helpers/redis.js';
import { eventually } from '../helpers/sessions.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * Brokers sharing Redis, each serving HTTPS with a certificate from a private CA, behind a
 * proxy that sends each new connection where the test says: a session starts on A, the link is
 * reset and kept down, and the reconnect lands on another broker, which hands it to A over TLS.
 */

const SCRIPT = 'echo start; sleep 1; echo done; exit 5';
const sans = ['localhost', '127.0.0.1'];

/** Starts a resumable command on `holder` through the proxy, cuts the link after its first line and sends the reconnect to `via`. */
async function resumeThrough(proxy: TcpProxy, holder: BrokerProcess, via: BrokerProcess, tls: ClientTls, app: string, user: string) {
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
  conn.on('stdout', (d: Buffer) => {
    out += d.toString();
    if (out === 'start\n') {
      cutAt = Date.now();
      proxy.cut(2_000);
      proxy.to(via.url);
    }
  });
  conn.on('resumed', () => (backAt = Date.now()));
  const end = await conn.done;
  return { out, end, backMs: backAt ? backAt - cutAt : undefined };
}

const logged = (b: BrokerProcess, msg: string) => b.logs.filter((l) => l.includes(`"msg":"${msg}"`));

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

  it('C does not trust the private CA: the client is told ENTRY_HANDOFF_REFUSED, and C logs why', async () => {
    const { out, end } = await resumeThrough(proxy, a, c, { ca: readFileSync(ca.cert) }, app, 'tls-stranded');
    expect(out).toBe('start\n');
    expect(end.code).toBe('ENTRY_HANDOFF_REFUSED');
    expect(end.closeCode).toBe(4502);
    expect(end.message).toMatch(/TLS/);
    const why = logged(c, 'resume not forwarded: TLS');
    expect(why.length).toBeGreaterThan(0);
    expect(why[0]).toMatch(/certificate/i);
    expect(why[0]).toMatch(/--peer-ca/);
    console.log(`hand-off refused, C logs: ${(JSON.parse(why[0]!) as { reason: string }).reason}`);
    // A token is never in a log line.
    expect(c.logs.some((l) => l.includes('eyJ'))).toBe(false);
  }, 30_000);
});

describe('a resume handed to another broker under mTLS', () => {
  const containers = new TestContainers();
  const redis = new TestRedis();
  const app = uniqueApp('rmm');
  const key = makeSigningKey();
  let fleet: TestCa;
  let alice: CertFiles;
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
    // B saw alice's certificate and says so; A sees only B's on the hop, and keeps the one the session started with.
    expect(logged(b, 'resume forwarded').some((l) => l.includes('"clientCert":"CN=alice-laptop"'))).toBe(true);
    await eventually(async () => logged(a, 'session resumed').some((l) => l.includes(`"via":"${b.id}"`) && l.includes('"clientCert":"CN=alice-laptop"')), "A's session resumed via B", 2_000);
  }, 30_000);

  it('C presents a certificate without clientAuth: warned at start; the client is told ENTRY_HANDOFF_REFUSED, and C logs why', async () => {
    expect(c.logs.some((l) => l.includes('clientAuth') && l.includes('"level":"warn"'))).toBe(true);
    const { out, end } = await resumeThrough(proxy, a, c, tls(), app, 'mtls-stranded');
    expect(out).toBe('start\n');
    expect(end.code).toBe('ENTRY_HANDOFF_REFUSED');
    expect(end.closeCode).toBe(4502);
    const why = logged(c, 'resume not forwarded: TLS');
    expect(why.length).toBeGreaterThan(0);
    expect(why[0]).toMatch(/refused this broker's certificate/);
    expect(why[0]).toMatch(/clientAuth/);
    console.log(`hand-off refused under mTLS, C logs: ${(JSON.parse(why[0]!) as { reason: string }).reason}`);
  }, 30_000);
});

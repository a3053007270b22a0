import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeExecSpec, encodeRequest, RequestType } from '../../proto/codec.js';
import { run, spawn } from '../../client/api.js';
import { type BrokerProcess, startBrokerProcess } from '../helpers/broker-process.js';
import { startTestBroker } from '../helpers/broker.js';
import { issue, makeCa, type TestCa } from '../helpers/certs.js';
import { runCli } from '../helpers/cli.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually } from '../helpers/sessions.js';
import { WireClient } from '../helpers/wire-client.js';

/** The serial number of the certificate a new TLS connection to the broker is served. */
function servedSerial(url: string, ca: Buffer): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: hostname, port: Number(port), ca, servername: 'localhost' }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.end();
      resolve(serial.toUpperCase());
    });
    s.on('error', reject);
  });
}

/** Replaces a file the way deploy tools do: write beside it, rename over it. */
function swap(path: string, content: Buffer): void {
  writeFileSync(`${path}.new`, content);
  renameSync(`${path}.new`, path);
}

describe('TLS on the broker', () => {
  const containers = new TestContainers();
  const app = uniqueApp('tl');
  const target = { app, proc: 'web', instance: 1 };
  let ca: TestCa;
  let broker: BrokerProcess;
  let certPath = '';
  let keyPath = '';
  let firstSerial = '';

  beforeAll(async () => {
    await containers.entry(app, 'web', 1);
    ca = makeCa('Entry Broker CA');
    const server = issue(ca, 'localhost', { sans: ['localhost', '127.0.0.1'], name: 'broker' });
    certPath = server.cert;
    keyPath = server.key;
    firstSerial = server.serial;
    // Readable by every user, as a key should not be (openssl writes it 0600).
    chmodSync(keyPath, 0o644);
    broker = await startBrokerProcess(['--tls-cert', certPath, '--tls-key', keyPath]);
  });
  afterAll(async () => {
    await broker?.stop();
    await containers.removeAll();
  });

  it('serves wss:// that the CLI reaches with --ca-file (and ENTRY_CA_FILE), and not without the CA', async () => {
    expect(broker.url).toMatch(/^https:/);
    const token = await broker.mint({ apps: [app] });
    const env = { ENTRY_BROKER: broker.url, ENTRY_TOKEN: token, ENTRY_CONFIG_DIR: '/nonexistent' };
    const ok = await runCli(['--ca-file', ca.cert, app, 'web', '1', '--', 'sh', '-c', 'echo over tls'], env);
    expect(ok.stderr.toString()).toBe('');
    expect(ok.stdout.toString()).toBe('over tls\n');
    expect(ok.status).toBe(0);
    const byEnv = await runCli([app, 'web', '1', '--', 'echo', 'env'], { ...env, ENTRY_CA_FILE: ca.cert });
    expect(byEnv.stdout.toString()).toBe('env\n');
    const listed = await runCli(['--ca-file', ca.cert, 'ls', '--json'], env);
    expect(listed.status).toBe(0);
    expect((JSON.parse(listed.stdout.toString()) as Array<{ app: string }>).some((c) => c.app === app)).toBe(true);
    const untrusted = await runCli([app, 'web', '1', '--', 'true'], env);
    expect(untrusted.status).toBe(255);
    // The broker answered: what to do is about its certificate, not its address or whether it runs.
    const why = /^enter: cannot reach broker https:\/\/\S+: the broker's certificate is not signed by a CA this client trusts \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\): give its CA with --ca-file or ENTRY_CA_FILE\n$/;
    expect(untrusted.stderr.toString()).toMatch(why);
    const untrustedList = await runCli(['ls'], env);
    expect(untrustedList.status).toBe(255);
    expect(untrustedList.stderr.toString()).toMatch(why);
    const api = await run({ broker: broker.url, token, target, command: ['echo', 'api'], ca: readFileSync(ca.cert) });
    expect(api.stdout.toString()).toBe('api\n');
    expect((await fetch(broker.url.replace('https:', 'http:') + '/healthz').catch(() => undefined))?.status).not.toBe(200);
  });

  it('costs a TLS handshake per connect, measured against plain ws://', async () => {
    const plain = await startBrokerProcess();
    try {
      const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
      // A fresh connection each time: GET /healthz (handshake + one request) …
      const fresh = (base: string) =>
        new Promise<number>((resolve, reject) => {
          const t0 = performance.now();
          const mod = base.startsWith('https') ? httpsGet : httpGet;
          mod(`${base}/healthz`, { agent: false, ...(base.startsWith('https') ? { ca: ca.pem() } : {}) }, (res) => {
            res.resume();
            res.on('end', () => resolve(performance.now() - t0));
          }).on('error', reject);
        });
      // … and a whole scripted session (connect, exec, exit).
      const session = async (base: string, token: string, tls: boolean) => {
        const t0 = performance.now();
        const r = await run({ broker: base, token, target, command: ['true'], ...(tls ? { ca: ca.pem() } : {}) });
        expect(r.exitCode).toBe(0);
        return performance.now() - t0;
      };
      const [tTls, tPlain] = [await broker.mint({ apps: [app] }), await plain.mint({ apps: [app] })];
      const h = { tls: [] as number[], plain: [] as number[] };
      const e = { tls: [] as number[], plain: [] as number[] };
      for (let i = 0; i < 40; i++) {
        h.tls.push(await fresh(broker.url));
        h.plain.push(await fresh(plain.url));
      }
      for (let i = 0; i < 15; i++) {
        e.tls.push(await session(broker.url, tTls, true));
        e.plain.push(await session(plain.url, tPlain, false));
      }
      console.log(
        `tls: new connection + GET /healthz, median of 40: https ${median(h.tls).toFixed(2)} ms, http ${median(h.plain).toFixed(2)} ms; ` +
          `scripted session \`true\`, median of 15: wss ${median(e.tls).toFixed(1)} ms, ws ${median(e.plain).toFixed(1)} ms`,
      );
    } finally {
      await plain.stop();
    }
  });

  it('reloads the certificate on SIGHUP and on a file change, without a restart', async () => {
    expect(await servedSerial(broker.url, ca.pem())).toBe(firstSerial);
    // Said at start.
    expect(broker.logs.some((l) => l.includes(`--tls-key ${keyPath} can be read by every user`))).toBe(true);
    const token = await broker.mint({ apps: [app] });
    // A live session must survive the reload.
    const live = await spawn({ broker: broker.url, token, target, command: ['sh', '-c', 'echo up; read x; echo got $x'], ca: ca.pem() });
    let out = '';
    live.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await eventually(async () => out === 'up\n', 'the session');

    const second = issue(ca, 'localhost', { sans: ['localhost', '127.0.0.1'], name: 'broker-2' });
    swap(keyPath, readFileSync(second.key));
    swap(certPath, readFileSync(second.cert));
    broker.child.kill('SIGHUP');
    const bySighup = await eventually(async () => (await servedSerial(broker.url, ca.pem())) === second.serial, 'the new serial after SIGHUP', 5_000);

    const third = issue(ca, 'localhost', { sans: ['localhost', '127.0.0.1'], name: 'broker-3' });
    swap(keyPath, readFileSync(third.key));
    swap(certPath, readFileSync(third.cert));
    const byWatch = await eventually(async () => (await servedSerial(broker.url, ca.pem())) === third.serial, 'the new serial after the file change', 5_000);
    console.log(`tls: new certificate served ${bySighup} ms after SIGHUP, ${byWatch} ms after a file swap`);
    expect(broker.logs.filter((l) => l.includes('tls certificate reloaded')).length).toBeGreaterThanOrEqual(2);
    // A SIGHUP with nothing changed is answered too.
    broker.child.kill('SIGHUP');
    await eventually(async () => broker.logs.some((l) => l.includes('tls certificate unchanged')), 'the answer to a SIGHUP with nothing new', 5_000);

    live.stdin.end('ok\n');
    expect(await live.wait()).toBe(0);
    expect(out).toBe('up\ngot ok\n');
    expect(broker.child.exitCode).toBeNull();
  });
});

describe('TLS from a Kubernetes Secret volume', () => {
  let broker: BrokerProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'entry-secret-volume-'));
  afterAll(async () => {
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes a version of the Secret and points `..data` at it in one rename, as the kubelet does. */
  function publish(version: string, pair: { cert: string; key: string }): void {
    mkdirSync(join(dir, version));
    writeFileSync(join(dir, version, 'tls.crt'), readFileSync(pair.cert));
    writeFileSync(join(dir, version, 'tls.key'), readFileSync(pair.key));
    symlinkSync(version, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  }

  it('serves the renewed certificate once the volume points at it, without a SIGHUP', async () => {
    const ca = makeCa('Entry Broker CA');
    const first = issue(ca, 'localhost', { sans: ['localhost', '127.0.0.1'], name: 'sv-1' });
    publish('..2026_12_05_a', first);
    symlinkSync('..data/tls.crt', join(dir, 'tls.crt'));
    symlinkSync('..data/tls.key', join(dir, 'tls.key'));
    broker = await startBrokerProcess(['--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key')]);
    expect(await servedSerial(broker.url, ca.pem())).toBe(first.serial);
    const renewed = issue(ca, 'localhost', { sans: ['localhost', '127.0.0.1'], name: 'sv-2' });
    publish('..2026_12_05_b', renewed);
    await eventually(async () => (await servedSerial(broker!.url, ca.pem())) === renewed.serial, 'the renewed certificate', 5_000);
  });
});

describe('mTLS on the broker', () => {
  const containers = new TestContainers();
  const app = uniqueApp('mt');
  let ca: TestCa;
  let clients: TestCa;
  let broker: BrokerProcess;
  let alice: { cert: string; key: string };

  beforeAll(async () => {
    await containers.entry(app, 'web', 1);
    ca = makeCa('Entry Broker CA');
    clients = makeCa('Entry Client CA');
    const server = issue(ca, 'localhost', { sans: ['localhost', '127.0.0.1'] });
    alice = issue(clients, 'alice-laptop', { client: true });
    broker = await startBrokerProcess(['--tls-cert', server.cert, '--tls-key', server.key, '--tls-client-ca', clients.cert]);
  });
  afterAll(async () => {
    await broker?.stop();
    await containers.removeAll();
  });

  it('lets in a client with a certificate and records its subject; refuses one without', async () => {
    const token = await broker.mint({ apps: [app] });
    const env = { ENTRY_BROKER: broker.url, ENTRY_TOKEN: token, ENTRY_CONFIG_DIR: '/nonexistent', ENTRY_CA_FILE: ca.cert };
    const ok = await runCli(['--cert', alice.cert, '--key', alice.key, app, 'web', '1', '--', 'echo', 'mtls'], env);
    expect(ok.stderr.toString()).toBe('');
    expect(ok.stdout.toString()).toBe('mtls\n');
    await eventually(async () => broker.logs.some((l) => l.includes('"session start"') && l.includes('CN=alice-laptop')), 'the subject in the session log', 2_000);

    const refused = await runCli([app, 'web', '1', '--', 'echo', 'no'], env);
    expect(refused.status).toBe(255);
    expect(refused.stdout.toString()).toBe('');
    expect(refused.stderr.toString()).toMatch(/^enter: /);

    // A certificate from another CA is refused too.
    const stranger = issue(ca, 'mallory', { client: true });
    const wrong = await runCli(['--cert', stranger.cert, '--key', stranger.key, app, 'web', '1', '--', 'echo', 'no'], env);
    expect(wrong.status).toBe(255);

    const viaApi = await run({
      broker: broker.url,
      token,
      target: { app, proc: 'web', instance: 1 },
      command: ['echo', 'api'],
      ca: readFileSync(ca.cert),
      cert: readFileSync(alice.cert),
      key: readFileSync(alice.key),
    });
    expect(viaApi.stdout.toString()).toBe('api\n');
  });
});

describe('behind a TLS-terminating proxy', () => {
  const containers = new TestContainers();
  const app = uniqueApp('px');
  const target = { app, proc: 'web', instance: 1 };

  beforeAll(async () => {
    await containers.entry(app, 'web', 1);
  });
  afterAll(() => containers.removeAll());

  const sessionRemote = (logs: string[]) =>
    logs.map((l) => JSON.parse(l) as { msg: string; remote?: string }).filter((l) => l.msg === 'session start').map((l) => l.remote);

  it('believes X-Forwarded-For only from --trusted-proxy addresses', async () => {
    const forwarded = { 'x-forwarded-for': '198.51.100.7, 203.0.113.9', 'x-forwarded-proto': 'https' };
    const trusting = await startTestBroker({ 'trusted-proxy': ['127.0.0.0/8'] });
    const plain = await startTestBroker();
    try {
      for (const b of [trusting, plain]) {
        const s = await WireClient.connect(b.wsUrl, {
          'access-token': await b.mint({ apps: [app] }),
          'app-name': target.app,
          'proc-name': target.proc,
          'instance-no': String(target.instance),
          'entry-protocol': '2',
          ...forwarded,
        });
        s.ws.send(encodeRequest(RequestType.START, encodeExecSpec({ argv: [Buffer.from('true')], tty: false })));
        await s.closed;
      }
      // The rightmost untrusted hop is the client: the one the proxy saw.
      expect(sessionRemote(trusting.logs)).toEqual(['203.0.113.9']);
      expect(sessionRemote(plain.logs)).toEqual(['127.0.0.1']);
      // Failed authentications count against the real address too (the rate limit's key).
      const bad = await fetch(`${trusting.url}/api/whoami`, { headers: { authorization: 'Bearer nope', ...forwarded } });
      expect(bad.status).toBe(401);
    } finally {
      await trusting.stop();
      await plain.stop();
    }
  });
});

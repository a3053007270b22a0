import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createSecureContext, type SecureContext } from 'node:tls';
import { forwardedClientCert, forwardUpgrade, HUNG_UP_AFTER_HANDSHAKE } from '../../broker/transport/forward.js';
import { issue, makeCa } from '../helpers/certs.js';

const servers: Array<Server | TcpServer> = [];
const held: Socket[] = [];
afterEach(async () => {
  for (const s of held.splice(0)) s.destroy();
  await Promise.all(
    servers.splice(0).map((s) => {
      const closed = new Promise((r) => s.close(r));
      if ('closeAllConnections' in s) s.closeAllConnections();
      return closed;
    }),
  );
});

const listen = async <S extends Server | TcpServer>(s: S): Promise<number> => {
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
};

/**
 * A broker's front door that hands every upgrade to `holder`; resolves with why forwarding
 * failed, and whether the client's socket was still open then (the caller's to answer).
 */
async function forwardingTo(holder: string, connectTimeoutMs: number, secureContext?: SecureContext, peerName?: string, clientCert?: string): Promise<{ port: number; failed: Promise<Error & { connected: boolean; socketOpen: boolean }> }> {
  let failed!: (err: Error & { connected: boolean; socketOpen: boolean }) => void;
  const failure = new Promise<Error & { connected: boolean; socketOpen: boolean }>((r) => (failed = r));
  const front = createServer();
  front.on('upgrade', (req, socket, head) =>
    forwardUpgrade(req, socket, head, holder, 'broker-a', { keepAliveMs: 0, connectTimeoutMs, secureContext, peerName, clientCert }, (err, connected) => {
      const socketOpen = !socket.destroyed;
      socket.destroy();
      failed(Object.assign(err, { connected, socketOpen }));
    }),
  );
  return { port: await listen(front), failed: failure };
}

describe('handing a resume to the broker that holds the session', () => {
  it('gives up on a holder that accepts the connection and never answers, within the connect timeout', async () => {
    // TCP accepted, the TLS handshake never answered: a host that is there and stuck.
    const silent = createTcpServer((s) => held.push(s));
    const silentPort = await listen(silent);
    const { port, failed } = await forwardingTo(`https://127.0.0.1:${silentPort}`, 300);
    const client = new WebSocket(`ws://127.0.0.1:${port}/enter`);
    client.on('error', () => undefined);
    const started = Date.now();
    const err = await failed;
    expect(err.message).toMatch(/no connection within 300 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);
    client.terminate();
  });

  it('passes the upgrade through to a holder that answers, marked as forwarded', async () => {
    const holder = createServer();
    let seen: Record<string, string | string[] | undefined> = {};
    holder.on('upgrade', (req, socket) => {
      seen = req.headers;
      socket.end('HTTP/1.1 418 Not Here\r\nContent-Length: 0\r\n\r\n');
    });
    const holderPort = await listen(holder);
    const { port } = await forwardingTo(`http://127.0.0.1:${holderPort}`, 300);
    const client = new WebSocket(`ws://127.0.0.1:${port}/enter`, { headers: { 'entry-resume': 'abc' } });
    const status = await new Promise<number>((resolve) => {
      client.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      client.on('error', () => resolve(-1));
    });
    expect(status).toBe(418);
    expect(seen['entry-forwarded-by']).toBe('broker-a');
    expect(seen['entry-resume']).toBe('abc');
  });

  it("names the client's certificate in a header of its own, whatever it holds, and never passes on the client's", async () => {
    const holder = createServer();
    let named: Array<string | undefined> = [];
    let lines = 0;
    holder.on('upgrade', (req, socket) => {
      named.push(forwardedClientCert(req));
      lines = req.rawHeaders.filter((h, i) => i % 2 === 0 && /^entry-forwarded-/i.test(h)).length;
      socket.end('HTTP/1.1 418 Not Here\r\nContent-Length: 0\r\n\r\n');
    });
    const holderPort = await listen(holder);
    const statusThrough = async (clientCert: string | undefined) => {
      const { port } = await forwardingTo(`http://127.0.0.1:${holderPort}`, 300, undefined, undefined, clientCert);
      const client = new WebSocket(`ws://127.0.0.1:${port}/enter`, { headers: { 'entry-resume': 'abc', 'entry-forwarded-client-cert': 'CN%3Dmallory', 'Entry-Forwarded-By': 'mallory' } });
      client.on('error', () => undefined);
      return new Promise<number>((resolve) => client.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    };
    // A line break in a subject would end the header line: it is carried, not obeyed.
    const subject = 'CN=Zoë Ünver, O=ops\r\nentry-forwarded-by: x';
    expect(await statusThrough(subject)).toBe(418);
    expect(named).toEqual([subject]);
    expect(lines).toBe(2);
    // No certificate seen: the holder hears of none, not the one the client claimed.
    named = [];
    expect(await statusThrough(undefined)).toBe(418);
    expect(named).toEqual([undefined]);
    expect(lines).toBe(1);
  });

  describe('to a holder under mTLS', () => {
    const ca = makeCa('Entry Forward Unit CA');
    afterAll(() => rmSync(ca.dir, { recursive: true, force: true }));
    const holderCert = issue(ca, 'holder', { sans: ['127.0.0.1'] });
    const holderWithMtls = async (cert = holderCert) => {
      const holder = createHttpsServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key), ca: readFileSync(ca.cert), requestCert: true, rejectUnauthorized: true });
      holder.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 418 Not Here\r\nContent-Length: 0\r\n\r\n'));
      holder.on('tlsClientError', () => undefined);
      return `https://127.0.0.1:${await listen(holder as unknown as Server)}`;
    };
    const through = async (secureContext: SecureContext, o: { holder?: typeof holderCert; peerName?: string } = {}) => {
      const { port, failed } = await forwardingTo(await holderWithMtls(o.holder), 2_000, secureContext, o.peerName);
      const client = new WebSocket(`ws://127.0.0.1:${port}/enter`, { headers: { 'entry-resume': 'abc' } });
      client.on('error', () => undefined);
      const status = new Promise<number>((resolve) => client.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
      const result = await Promise.race([failed, status]);
      client.terminate();
      return result;
    };

    it("reports a holder's refusal of no certificate, after the handshake, with the client's socket left to answer", async () => {
      const err = await through(createSecureContext({ ca: readFileSync(ca.cert) }));
      expect(err).toBeInstanceOf(Error);
      expect((err as NodeJS.ErrnoException).code).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
      expect(err).toMatchObject({ connected: true, socketOpen: true });
    });

    it('reports a hang-up after the handshake when the certificate shown is not for clients', async () => {
      const serverOnly = issue(ca, 'forwarder', { sans: ['127.0.0.1'] });
      const err = await through(createSecureContext({ ca: readFileSync(ca.cert), cert: readFileSync(serverOnly.cert), key: readFileSync(serverOnly.key) }));
      expect((err as NodeJS.ErrnoException).code).toBe(HUNG_UP_AFTER_HANDSHAKE);
      expect(err).toMatchObject({ connected: true, socketOpen: true });
    });

    it("checks a shared certificate against --peer-name, not the holder's address, when given", async () => {
      // One certificate for every broker, naming their Service: no pod's address is in it.
      const shared = issue(ca, 'entry.entry.svc', { sans: ['entry.entry.svc'], both: true, name: 'shared' });
      const context = createSecureContext({ ca: readFileSync(ca.cert), cert: readFileSync(shared.cert), key: readFileSync(shared.key) });
      expect(await through(context, { holder: shared })).toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID', connected: false, socketOpen: true });
      expect(await through(context, { holder: shared, peerName: 'entry.entry.svc' })).toBe(418);
      expect(await through(context, { holder: shared, peerName: 'other.entry.svc' })).toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    });

    it('passes the upgrade through when the certificate shown is a client certificate of the holder CA', async () => {
      const fit = issue(ca, 'forwarder-both', { sans: ['127.0.0.1'], both: true });
      expect(await through(createSecureContext({ ca: readFileSync(ca.cert), cert: readFileSync(fit.cert), key: readFileSync(fit.key) }))).toBe(418);
    });
  });
});

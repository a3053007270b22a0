import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { forwardUpgrade } from '../../broker/transport/forward.js';

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

/** A broker's front door that hands every upgrade to `holder`; resolves with why forwarding failed. */
async function forwardingTo(holder: string, connectTimeoutMs: number): Promise<{ port: number; failed: Promise<Error> }> {
  let failed!: (err: Error) => void;
  const failure = new Promise<Error>((r) => (failed = r));
  const front = createServer();
  front.on('upgrade', (req, socket, head) =>
    forwardUpgrade(req, socket, head, holder, 'broker-a', { keepAliveMs: 0, connectTimeoutMs }, (err) => {
      socket.destroy();
      failed(err);
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
});

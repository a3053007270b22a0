import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { FaultSite } from '../../broker/fault.js';
import { logAccess } from '../../broker/http/access-log.js';
import { httpBoundary } from '../../broker/http/boundary.js';
import { requestId } from '../../broker/http/request-id.js';
import { createLogger } from '../../broker/log.js';

describe('the HTTP fault boundary', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  async function serve(handler: Parameters<typeof httpBoundary>[1]) {
    const faults: Array<{ where: FaultSite; err: unknown; context?: Record<string, unknown> }> = [];
    const lines: string[] = [];
    const log = createLogger('debug', (l) => lines.push(l));
    server = createServer(
      httpBoundary(
        'http',
        (req, res) => {
          res.setHeader('x-request-id', requestId(req));
          logAccess(req, res, log);
          return handler(req, res);
        },
        (where, err, context) => faults.push({ where, err, ...(context ? { context } : {}) }),
      ),
    );
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { url, faults, lines };
  }

  it('answers 500 ENTRY_INTERNAL with the request id when a handler throws, and serves the next request', async () => {
    let calls = 0;
    const { url, faults } = await serve(() => {
      if (++calls === 1) throw new Error('boom');
    });
    const res = await fetch(`${url}/x`, { headers: { 'x-request-id': 'req-1' } });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: 'ENTRY_INTERNAL', message: 'internal error', request: 'req-1' });
    expect(faults).toHaveLength(1);
    expect(faults[0]!.context).toMatchObject({ request: 'req-1', method: 'GET', path: '/x' });
    expect((faults[0]!.err as Error).stack).toContain('boom');
  });

  it('reports the path of a request that faulted cut as the access log cuts it', async () => {
    const { url, faults } = await serve(() => {
      throw new Error('boom');
    });
    const long = `/${'a'.repeat(10_000)}`;
    expect((await fetch(`${url}${long}?q=1`)).status).toBe(500);
    expect(faults[0]!.context).toMatchObject({ path: `${long.slice(0, 256)}…` });
  });

  it('catches a rejected handler the same way', async () => {
    const { url, faults } = await serve(async () => {
      await Promise.resolve();
      throw new TypeError('late');
    });
    const res = await fetch(url);
    expect(res.status).toBe(500);
    expect(faults.map((f) => (f.err as Error).message)).toEqual(['late']);
  });

  it('cuts the connection when the answer had already begun', async () => {
    const { url, faults } = await serve(async (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      throw new Error('mid-answer');
    });
    await expect(fetch(url).then((r) => r.text())).rejects.toThrow();
    expect(faults).toHaveLength(1);
  });

  it('logs an answered request even when the socket was destroyed before the answer finished', async () => {
    const { url, lines } = await serve((req, res) => {
      res.writeHead(413, { connection: 'close' });
      res.end();
      req.socket.destroy();
    });
    await fetch(url, { method: 'POST', body: 'x'.repeat(1000) }).catch(() => undefined);
    const accessLine = () => lines.map((l) => JSON.parse(l) as { msg: string; status?: number; remote?: string }).find((l) => l.msg === 'http');
    await expect.poll(accessLine).toMatchObject({ status: 413, remote: '127.0.0.1' });
  });
});

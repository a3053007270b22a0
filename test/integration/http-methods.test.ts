import { readdirSync, readlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PIPELINED_REQUESTS } from '../../broker/http/listener.js';
import { BrokerProcess, startBrokerProcess } from '../helpers/broker-process.js';
import { rawHttp } from '../helpers/raw-http.js';
import { eventually } from '../helpers/sessions.js';

/** Headers must come within 1 s; a body may take 3 s after them, longer than the headers may. */
const HANDSHAKE_TIMEOUT_MS = 1_000;
const BODY_TIMEOUT_MS = 3_000;

describe('HTTP methods and timeouts', () => {
  let broker: BrokerProcess;
  let port: number;
  let token: string;

  beforeAll(async () => {
    broker = await startBrokerProcess(['--handshake-timeout', String(HANDSHAKE_TIMEOUT_MS), '--body-timeout', String(BODY_TIMEOUT_MS)]);
    port = Number(new URL(broker.url).port);
    token = await broker.mint({ apps: ['shop'] });
  });
  afterAll(async () => {
    await broker?.stop();
  });

  const head = (path: string, extra = '') => `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\n${extra}`;
  const body = JSON.stringify({ app: 'shop', proc: 'web', instance: 1 });

  it('takes a body that arrives within --body-timeout, however long past --handshake-timeout', async () => {
    // The body in pieces, whole 2.4 s after its headers.
    const pieces = body.match(/.{1,5}/g)!;
    const answer = await rawHttp(port, { head: head('/api/tickets', `Content-Length: ${body.length}\r\n\r\n`), trickle: pieces, everyMs: 2_400 / pieces.length, answers: 1, timeoutMs: 10_000 });
    expect(answer.statuses).toEqual([200]);
    expect(answer.text).toContain('"ticket"');
  });

  it('answers a body that never ends with its own 408 once --body-timeout has passed', async () => {
    const started = Date.now();
    const answer = await rawHttp(port, { head: head('/api/tickets', `Content-Length: ${body.length + 10}\r\n\r\n${body}`), answers: 1, timeoutMs: 15_000 });
    const tookMs = Date.now() - started;
    expect(answer.statuses).toEqual([408]);
    expect(answer.text).toContain('"error":"ENTRY_BODY_TIMEOUT"');
    expect(answer.text.toLowerCase()).toContain('x-request-id:');
    expect(tookMs).toBeGreaterThanOrEqual(BODY_TIMEOUT_MS - 100);
  });

  it('answers HEAD on the health and readiness checks as GET, without a body', async () => {
    for (const path of ['/healthz', '/readyz']) {
      const [get, head] = await Promise.all([fetch(broker.url + path), fetch(broker.url + path, { method: 'HEAD' })]);
      expect(head.status, path).toBe(get.status);
      expect(head.headers.get('content-type'), path).toBe(get.headers.get('content-type'));
      expect(await head.text(), path).toBe('');
    }
  });

  it('answers HEAD on an API that reads, with its status and no body', async () => {
    const res = await fetch(`${broker.url}/api/whoami`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
    const refused = await fetch(`${broker.url}/api/whoami`, { method: 'HEAD' });
    expect(refused.status).toBe(401);
  });

  it('answers a method a path does not take with 405 and the methods it does', async () => {
    const cases: Array<[string, string, string]> = [
      ['PUT', '/api/config', 'GET, HEAD'],
      ['DELETE', '/api/config', 'GET, HEAD'],
      ['POST', '/', 'GET, HEAD'],
      ['POST', '/index.html', 'GET, HEAD'],
      ['DELETE', '/entry-terminal.js', 'GET, HEAD'],
      ['POST', '/api/whoami', 'GET, HEAD'],
      ['PUT', '/api/tickets', 'POST'],
      ['POST', '/healthz', 'GET, HEAD'],
      ['DELETE', '/readyz', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await fetch(broker.url + path, { method, headers: { authorization: `Bearer ${token}` } });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow'), `${method} ${path}`).toBe(allow);
      expect(((await res.json()) as { error: string }).error, `${method} ${path}`).toBe('ENTRY_METHOD_NOT_ALLOWED');
    }
    // A path that is not there stays 404 whatever the method.
    expect((await fetch(`${broker.url}/no-such-file.txt`, { method: 'POST' })).status).toBe(404);
  });

  it('takes the access-token header on the API, as the upgrade does, and answers SIGHUP without TLS', async () => {
    const res = await fetch(`${broker.url}/api/whoami`, { headers: { 'access-token': token } });
    expect(res.status).toBe(200);
    expect((await res.json()) as { user: string }).toMatchObject({ user: 'alice' });
    broker.child.kill('SIGHUP');
    await eventually(async () => broker.logs.some((l) => l.includes('SIGHUP: no TLS certificate to reload')), 'the answer to SIGHUP', 5_000);
    expect((await fetch(`${broker.url}/healthz`)).status).toBe(200);
  });

  it('answers a plain request to a WebSocket endpoint with 426 and its own code', async () => {
    for (const [method, path] of [['GET', '/enter'], ['POST', '/attach'], ['GET', '/watch']] as const) {
      const res = await fetch(broker.url + path, { method });
      expect(res.status, `${method} ${path}`).toBe(426);
      expect(res.headers.get('upgrade'), `${method} ${path}`).toBe('websocket');
      expect(((await res.json()) as { error: string }).error, `${method} ${path}`).toBe('ENTRY_UPGRADE_REQUIRED');
    }
  });

  it('answers a request that offers another protocol (h2c, as curl --http2 does) as an ordinary one, body and all', async () => {
    const offer = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n';
    const health = await rawHttp(port, { head: `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${offer}\r\n`, answers: 1, timeoutMs: 5_000 });
    expect(health.statuses).toEqual([200]);
    expect(health.text).toMatch(/^x-request-id: \S+/im);
    expect(health.text).not.toMatch(/^upgrade:/im);
    const ticket = await rawHttp(port, { head: `${head('/api/tickets', `Content-Length: ${body.length}\r\n${offer}`)}\r\n${body}`, answers: 1, timeoutMs: 5_000 });
    expect(ticket.statuses).toEqual([200]);
    expect(ticket.text).toMatch(/"ticket":"[^"]+"/);
    // Pipelined behind an answer still being written (a large file), and followed by another.
    const plain = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`;
    const piped = await rawHttp(port, { head: `${plain('/entry-terminal.js')}\r\n${plain('/healthz')}${offer}\r\n${plain('/readyz')}\r\n`, answers: 3, timeoutMs: 5_000 });
    expect(piped.statuses).toEqual([200, 200, expect.any(Number)]);
    // Behind two such answers: the second is still queued when the first is done.
    const twice = await rawHttp(port, { head: `${plain('/entry-terminal.js')}\r\n${plain('/entry-terminal.js')}\r\n${plain('/healthz')}${offer}\r\n${plain('/readyz')}\r\n`, answers: 4, timeoutMs: 5_000 });
    expect(twice.statuses).toEqual([200, 200, 200, expect.any(Number)]);
    // A WebSocket upgrade is still one.
    const ws = await rawHttp(port, { head: `GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`, answers: 1, timeoutMs: 5_000 });
    expect(ws.statuses).toEqual([404]);
  });

  /** Files of the console the broker holds open. */
  const consoleFiles = () =>
    readdirSync(`/proc/${broker.pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${broker.pid}/fd/${fd}`).includes('/console/');
      } catch {
        return false; // closed meanwhile
      }
    }).length;

  /** Sends `count` pipelined requests for the console's largest file, reads nothing back, and leaves after a second. */
  const pipelineUnread = (count: number) =>
    new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.once('connect', () => {
        socket.pause();
        socket.write(`GET /entry-terminal.js HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`.repeat(count));
        setTimeout(() => socket.destroy(), 1_000);
      });
      socket.once('close', () => resolve());
    });

  it('closes the files of pipelined answers still waiting when their connection closes', async () => {
    expect(consoleFiles()).toBe(0);
    await Promise.all(Array.from({ length: 5 }, () => pipelineUnread(MAX_PIPELINED_REQUESTS - 2)));
    await eventually(async () => consoleFiles() === 0, 'every file closed', 5_000);
    expect((await fetch(`${broker.url}/healthz`)).status).toBe(200);
  });

  it('closes a connection that sends more than MAX_PIPELINED_REQUESTS requests ahead of their answers', async () => {
    const ahead = MAX_PIPELINED_REQUESTS * 4;
    const piled = await rawHttp(port, { head: `GET /entry-terminal.js HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`.repeat(ahead), timeoutMs: 10_000 });
    expect(piled.closedByServer).toBe(true);
    expect(piled.statuses.length).toBeLessThan(ahead);
    await eventually(async () => consoleFiles() === 0, 'every file closed', 5_000);
    // One at a time, a connection takes any number.
    const one = `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;
    const sequential = await rawHttp(port, { head: one, trickle: Array.from({ length: MAX_PIPELINED_REQUESTS * 2 }, () => one), everyMs: 20, answers: MAX_PIPELINED_REQUESTS * 2 + 1, timeoutMs: 10_000 });
    expect(sequential.statuses).toHaveLength(MAX_PIPELINED_REQUESTS * 2 + 1);
  });

  it('answers the metrics listener as the others: HEAD as GET, 405 with Allow, a request id', async () => {
    const withMetrics = await startBrokerProcess(['--metrics-listen', '127.0.0.1:0']);
    try {
      const listening = withMetrics.logs.map((l) => JSON.parse(l) as { msg: string; url?: string }).find((l) => l.msg === 'metrics listening');
      const url = listening!.url!;
      const [get, headRes] = await Promise.all([fetch(url), fetch(url, { method: 'HEAD' })]);
      expect(get.status).toBe(200);
      expect(get.headers.get('x-request-id')).toMatch(/\S/);
      expect(headRes.status).toBe(200);
      expect(await headRes.text()).toBe('');
      const post = await fetch(url, { method: 'POST' });
      expect(post.status).toBe(405);
      expect(post.headers.get('allow')).toBe('GET, HEAD');
      expect((await fetch(url.replace('/metrics', '/other'))).status).toBe(404);
    } finally {
      await withMetrics.stop();
    }
  });
});

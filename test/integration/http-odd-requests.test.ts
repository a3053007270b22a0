import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { rawHttp } from '../helpers/raw-http.js';

const HANDSHAKE_TIMEOUT_MS = 1_000;

/** Requests no ordinary client sends, answered as every other refusal: JSON with the registry's code. */
describe('odd HTTP requests', () => {
  let broker: TestBroker;
  let port: number;

  beforeAll(async () => {
    broker = await startTestBroker({ 'handshake-timeout': String(HANDSHAKE_TIMEOUT_MS), 'metrics-listen': '127.0.0.1:0' });
    port = Number(new URL(broker.url).port);
  });
  afterAll(async () => {
    await broker?.stop();
  });

  const ask = (head: string | Buffer) => rawHttp(port, { head, answers: 1, timeoutMs: 5_000 });
  const refusal = (text: string) => {
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    return JSON.parse(body) as { error: string; message: string };
  };

  it('answers a WebSocket upgrade to a path that takes none with 404, its code and the request id', async () => {
    const upgrade = (path: string) =>
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
    for (const path of ['/api/whoami', '/healthz', '/', '/nowhere']) {
      const answer = await ask(upgrade(path));
      expect(answer.statuses, path).toEqual([404]);
      expect(answer.text.toLowerCase(), path).toContain('x-request-id:');
      expect(refusal(answer.text), path).toMatchObject({ error: 'ENTRY_NOT_FOUND' });
      expect(refusal(answer.text).message, path).toContain('/enter');
    }
  });

  it("answers what Node's parser refuses, and CONNECT, with the registry's code on both listeners", async () => {
    const cases: Array<[string, string | Buffer, number, string]> = [
      ['a request line that is not one', 'GARBAGE\r\n\r\n', 400, 'ENTRY_BAD_REQUEST'],
      ['an unknown method', 'FOO / HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'ENTRY_BAD_REQUEST'],
      ['a NUL in the path', Buffer.from('GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'), 400, 'ENTRY_BAD_REQUEST'],
      ['a control character in a header', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\u0001b\r\n\r\n', 400, 'ENTRY_BAD_REQUEST'],
      ['a malformed chunk', 'POST /api/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', 400, 'ENTRY_BAD_REQUEST'],
      ['two differing lengths', 'POST /api/tickets HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', 400, 'ENTRY_BAD_REQUEST'],
      ['a 70 KB URL', `GET /api/${'a'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414, 'ENTRY_URI_TOO_LONG'],
      ['a 20 KB URL with its headers', `GET /api/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414, 'ENTRY_URI_TOO_LONG'],
      ['a 16 KB URL that headers take over the limit', `GET /${'a'.repeat(16_000)} HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(1_000)}\r\n\r\n`, 431, 'ENTRY_HEADERS_TOO_LARGE'],
      ['70 KB of headers', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`, 431, 'ENTRY_HEADERS_TOO_LARGE'],
      ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 405, 'ENTRY_METHOD_NOT_ALLOWED'],
    ];
    const metricsPort = Number(new URL(broker.broker.metricsUrl!).port);
    for (const [listener, p] of [['broker', port], ['metrics', metricsPort]] as const) {
      for (const [name, head, status, code] of cases) {
        const answer = await rawHttp(p, { head, timeoutMs: 5_000 });
        expect(answer.statuses, `${listener}: ${name}`).toEqual([status]);
        expect(refusal(answer.text), `${listener}: ${name}`).toMatchObject({ error: code });
        expect(answer.closedByServer, `${listener}: ${name}`).toBe(true);
      }
    }
    expect((await fetch(`${broker.url}/healthz`)).status).toBe(200);
    expect(broker.logs.filter((l) => l.includes('internal fault') || l.includes('uncaught'))).toEqual([]);
  });

  it("gives a request Node's parser refused, and CONNECT, its http log line, as every answer has: its request id, bounded, no token", async () => {
    const token = await broker.mint();
    const metricsPort = Number(new URL(broker.broker.metricsUrl!).port);
    const cases: Array<[string, number, string, number, Record<string, unknown>]> = [
      ['headers over the limit', port, `GET /healthz?ticket=${token} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`, 431, { method: 'GET', path: '/healthz', code: 'ENTRY_HEADERS_TOO_LARGE', refused: 'HPE_HEADER_OVERFLOW' }],
      ['a URL over the limit', port, `GET /api/${'a'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414, { method: 'GET', path: `/api/${'a'.repeat(251)}…`, code: 'ENTRY_URI_TOO_LONG' }],
      ['a request line that is not one', port, 'GARBAGE\r\n\r\n', 400, { code: 'ENTRY_BAD_REQUEST' }],
      ['CONNECT', port, `CONNECT ${'a'.repeat(300)}:443 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`, 405, { method: 'CONNECT', path: `${'a'.repeat(256)}…`, code: 'ENTRY_METHOD_NOT_ALLOWED' }],
      ['CONNECT with a query, where a ticket may be', port, `CONNECT /enter?ticket=${token} HTTP/1.1\r\nHost: x\r\n\r\n`, 405, { method: 'CONNECT', path: '/enter', code: 'ENTRY_METHOD_NOT_ALLOWED' }],
      ['CONNECT on the metrics listener', metricsPort, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 405, { method: 'CONNECT', path: 'example.com:443', code: 'ENTRY_METHOD_NOT_ALLOWED' }],
      ['a malformed header on the metrics listener', metricsPort, `GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nX: a\u0001b\r\n\r\n`, 400, { method: 'GET', path: '/metrics', code: 'ENTRY_BAD_REQUEST' }],
    ];
    for (const [name, p, head, status, fields] of cases) {
      const answer = await rawHttp(p, { head, timeoutMs: 5_000 });
      expect(answer.statuses, name).toEqual([status]);
      const id = /x-request-id: ([^\r]+)/i.exec(answer.text)?.[1];
      expect(id, name).toMatch(/^[0-9a-f-]{36}$/);
      const line = broker.logs.find((l) => l.includes(`"request":"${id}"`));
      expect(line, name).toBeDefined();
      expect(JSON.parse(line!), name).toMatchObject({ level: 'info', msg: 'http', status, remote: '127.0.0.1', ...fields });
      expect(line!.length, name).toBeLessThan(1_000);
      expect(line, name).not.toContain(token.split('.')[2]!);
    }
  });

  it('answers a URL over the limit that came after another request on the connection with 431, as it cannot tell it from headers', async () => {
    const first = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
    const answer = await rawHttp(port, { head: first, trickle: [`GET /api/${'a'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`], everyMs: 50, answers: 2, timeoutMs: 5_000 });
    expect(answer.statuses).toEqual([200, 431]);
    expect(refusal(answer.text.slice(answer.text.lastIndexOf('HTTP/1.1 431')))).toMatchObject({ error: 'ENTRY_HEADERS_TOO_LARGE' });
  });

  it('refuses a request path with dot segments, an encoded slash or a backslash with 400 and its code, rather than resolving it', async () => {
    const auth = `Authorization: Bearer ${await broker.mint({ apps: ['*'] })}\r\n`;
    const get = (target: string) => `GET ${target} HTTP/1.1\r\nHost: x\r\n${auth}\r\n`;
    const upgrade = (target: string) => `GET ${target} HTTP/1.1\r\nHost: x\r\n${auth}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
    const cases: Array<[string, string]> = [
      ['a .. segment in the API', get('/api/sessions/../whoami')],
      ['a . segment in the API', get('/api/./whoami')],
      ['an encoded .. segment', get('/api/sessions/%2e%2E/whoami')],
      ['a half-encoded .. segment', get('/api/sessions/.%2e/whoami')],
      ['an encoded slash', get('/api/sessions%2Fwhoami')],
      ['a backslash', get('/api\\whoami')],
      ['an encoded backslash', get('/api/sessions%5cwhoami')],
      ['a .. segment into the API from the console', get('/assets/../api/whoami')],
      ['a .. segment in the absolute form', get('http://x/api/sessions/../whoami')],
      ['a .. segment in the console', get('/assets/../index.html')],
      ['a .. segment in an upgrade', upgrade('/attach/../enter?app=a&proc=b&instance=1')],
      ['an encoded slash in an upgrade', upgrade('/enter%2f')],
    ];
    for (const [name, head] of cases) {
      const answer = await ask(head);
      expect(answer.statuses, name).toEqual([400]);
      expect(refusal(answer.text), name).toMatchObject({ error: 'ENTRY_BAD_REQUEST' });
      expect(refusal(answer.text).message, name).toMatch(/dot segment|encoded slash or a backslash/);
      expect(answer.text.toLowerCase(), name).toContain('x-request-id:');
    }
    // Dots and slashes in the query are the query's business; a dot inside a name is a name.
    expect((await ask(get('/api/whoami?x=../%2f'))).statuses).toEqual([200]);
    expect((await ask(get('/api/sessions/..x'))).statuses).toEqual([404]);
  });

  it('refuses a WebSocket upgrade on the metrics listener with 400 and its code, and answers an h2c offer as the plain request it is', async () => {
    const metricsPort = Number(new URL(broker.broker.metricsUrl!).port);
    const upgrade = (path: string, protocol: string) =>
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: ${protocol}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
    for (const path of ['/metrics', '/healthz', '/nowhere']) {
      const answer = await rawHttp(metricsPort, { head: upgrade(path, 'websocket'), timeoutMs: 5_000 });
      expect(answer.statuses, path).toEqual([400]);
      expect(refusal(answer.text), path).toMatchObject({ error: 'ENTRY_BAD_REQUEST' });
      expect(refusal(answer.text).message, path).toContain('takes no WebSocket upgrade');
      expect(answer.text.toLowerCase(), path).toContain('x-request-id:');
      expect(answer.closedByServer, path).toBe(true);
    }
    const h2c = await rawHttp(metricsPort, { head: upgrade('/metrics', 'h2c'), answers: 1, timeoutMs: 5_000 });
    expect(h2c.statuses).toEqual([200]);
    expect(h2c.text).toContain('entry_');
  });

  it('answers headers that do not arrive within --handshake-timeout with 408 and its code', async () => {
    const answer = await rawHttp(port, { head: 'GET /healthz HTTP/1.1\r\nHost: x\r\n', answers: 1, timeoutMs: HANDSHAKE_TIMEOUT_MS * 5 });
    expect(answer.statuses).toEqual([408]);
    expect(refusal(answer.text)).toMatchObject({ error: 'ENTRY_REQUEST_TIMEOUT' });
  });

  it('refuses an HTTP/1.1 request without Host with 400 and its code, and answers an unknown path on the metrics listener with its code', async () => {
    const metricsPort = Number(new URL(broker.broker.metricsUrl!).port);
    for (const p of [port, metricsPort]) {
      const hostless = await rawHttp(p, { head: 'GET /healthz HTTP/1.1\r\n\r\n', timeoutMs: 5_000 });
      expect(hostless.statuses, `port ${p}`).toEqual([400]);
      expect(refusal(hostless.text), `port ${p}`).toMatchObject({ error: 'ENTRY_BAD_REQUEST' });
      expect(hostless.closedByServer, `port ${p}`).toBe(true);
      // HTTP/1.0 has no Host to require.
      expect((await rawHttp(p, { head: 'GET /healthz HTTP/1.0\r\n\r\n', timeoutMs: 5_000 })).statuses, `port ${p}`).toEqual([200]);
    }
    const other = await fetch(broker.broker.metricsUrl!.replace('/metrics', '/other'));
    expect(other.status).toBe(404);
    expect(await other.json()).toMatchObject({ error: 'ENTRY_NOT_FOUND' });
  });

  it('refuses a WebSocket handshake it cannot complete with its code, as other refusals', async () => {
    const key = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    const cases: Array<[string, string, number, string]> = [
      ['POST', `POST /enter HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n${key}\r\n`, 405, 'ENTRY_METHOD_NOT_ALLOWED'],
      ['no key', 'GET /enter HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n', 400, 'ENTRY_BAD_REQUEST'],
      ['version 7', `GET /attach HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 7\r\n${key}\r\n`, 400, 'ENTRY_BAD_REQUEST'],
      ['bad key', 'GET /watch?session=x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n', 400, 'ENTRY_BAD_REQUEST'],
    ];
    for (const [name, head, status, code] of cases) {
      const answer = await rawHttp(port, { head, timeoutMs: 5_000 });
      expect(answer.statuses, name).toEqual([status]);
      expect(refusal(answer.text), name).toMatchObject({ error: code });
      expect(answer.text.toLowerCase(), name).toContain('x-request-id:');
    }
  });
});

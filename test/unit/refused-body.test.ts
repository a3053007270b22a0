import { createServer, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type ApiDeps, handleApi } from '../../broker/http/api.js';
import { JSON_BODY, REFUSED_BODY_IDLE_MS } from '../../broker/http/body.js';

const LIMIT = JSON_BODY.limit;

/** What a raw uploader saw: the answer's text, and when the server closed after the first byte of it. */
interface Upload {
  text: string;
  answeredAt: number;
  closedAt: number;
  sent: number;
}

/**
 * Declares a body of `declared` bytes and sends 16 KiB every millisecond until `stopAfterMs`,
 * keeping its own event loop busy for `busyMs` after each write, as a loaded client does: it
 * writes again before it reads what arrived meanwhile. With `thenEnd` it then closes its side.
 */
function upload(port: number, opts: { declared: number; stopAfterMs: number; busyMs: number; thenEnd?: boolean }): Promise<Upload> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const start = Date.now();
    let text = '';
    let answeredAt = -1;
    let sent = 0;
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      if (answeredAt < 0) answeredAt = Date.now() - start;
      text += d.toString('latin1');
    });
    socket.on('close', () => {
      clearInterval(writer);
      resolve({ text, answeredAt, closedAt: Date.now() - start, sent });
    });
    // Headers and a first stretch of body at once, as an uploader sends them.
    const first = Buffer.alloc(Math.min(256 * 1024, opts.declared), 0x41);
    socket.write(`POST /api/tickets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${opts.declared}\r\n\r\n`);
    socket.write(first);
    sent = first.length;
    const piece = Buffer.alloc(16 * 1024, 0x41);
    const writer = setInterval(() => {
      if (socket.destroyed || Date.now() - start > opts.stopAfterMs || sent + piece.length > opts.declared) {
        clearInterval(writer);
        if (opts.thenEnd && !socket.destroyed) socket.end();
        return;
      }
      socket.write(piece);
      sent += piece.length;
      const until = Date.now() + opts.busyMs;
      while (Date.now() < until);
    }, 1);
  });
}

describe('a refused request body', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  /** The API on loopback; anything past the body's judgement (a token check, a store call) is recorded. */
  async function serve(bodyTimeoutMs: number) {
    const reached: string[] = [];
    const untouchable = new Proxy({}, { get: (_t, key) => (reached.push(String(key)), () => Promise.reject(new Error(`reached ${String(key)}`))) });
    const deps = { guard: untouchable, policy: untouchable, tickets: untouchable, backends: untouchable, store: untouchable, audit: untouchable, recorder: undefined, bodyTimeoutMs } as unknown as ApiDeps;
    server = createServer((req, res) => void handleApi(req, res, new URL(req.url ?? '/', 'http://x').pathname, deps));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return { port: (server.address() as AddressInfo).port, reached };
  }

  it('reaches a client that is still uploading it, every time, and never reaches the token check', async () => {
    const { port, reached } = await serve(5_000);
    for (let i = 0; i < 10; i++) {
      const got = await upload(port, { declared: LIMIT * 100, stopAfterMs: 300, busyMs: 30, thenEnd: true });
      expect(got.text).toMatch(/^HTTP\/1\.1 413 /);
      expect(got.text).toContain('"error":"ENTRY_BODY_TOO_LARGE"');
      expect(got.text.toLowerCase()).toContain('connection: close');
    }
    expect(reached).toEqual([]);
  });

  it('is closed as soon as the client closes its side', async () => {
    const { port } = await serve(30_000);
    const got = await upload(port, { declared: LIMIT * 1000, stopAfterMs: 200, busyMs: 0, thenEnd: true });
    expect(got.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(got.closedAt).toBeGreaterThanOrEqual(200);
    expect(got.closedAt).toBeLessThan(200 + REFUSED_BODY_IDLE_MS);
  });

  it('is closed once the client stops sending the rest', async () => {
    const { port } = await serve(30_000);
    const got = await upload(port, { declared: LIMIT * 1000, stopAfterMs: 300, busyMs: 0 });
    expect(got.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(got.closedAt).toBeGreaterThanOrEqual(300);
    expect(got.closedAt).toBeLessThan(300 + REFUSED_BODY_IDLE_MS + 2_000);
  });

  it('is cut after --body-timeout when the client never stops sending', async () => {
    const { port } = await serve(500);
    const got = await upload(port, { declared: LIMIT * 10_000, stopAfterMs: 20_000, busyMs: 0 });
    expect(got.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(got.closedAt).toBeGreaterThanOrEqual(500);
    expect(got.closedAt).toBeLessThan(5_000);
    expect(got.sent).toBeLessThan(LIMIT * 10_000);
  });

  it('that arrived whole is answered and its connection closed at once', async () => {
    const { port } = await serve(30_000);
    // fetch loads on first use: loaded before the clock starts (a refused connection is enough).
    await fetch('http://127.0.0.1:1/').catch(() => undefined);
    const started = Date.now();
    const res = await fetch(`http://127.0.0.1:${port}/api/tickets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.alloc(LIMIT + 1, 0x20) });
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    expect(await res.json()).toMatchObject({ error: 'ENTRY_BODY_TOO_LARGE' });
    expect(Date.now() - started).toBeLessThan(REFUSED_BODY_IDLE_MS);
  });
});

import { createReadStream } from 'node:fs';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { ClientError, run } from '../../client/index.js';
import { TICKET_WAIT_MS } from '../../client/protocol/connection.js';
import { decodeRequest, encodeResponse, encodeResumeTicket, RequestType, ResponseType, utf8 } from '../../proto/codec.js';
import { REFUSAL_BODY_MAX_BYTES, REFUSAL_BODY_WAIT_MS } from '../../client/protocol/refused-upgrade.js';
import { rawAnswer } from '../../broker/http/raw-answer.js';
import { FakeBroker } from '../helpers/fake-broker.js';

/**
 * run() against a stand-in broker on loopback that goes silent or answers nothing where a real
 * network can: every failure ends the call with a ClientError (or the input's own error), in
 * bounded time, never a hang or an uncaught exception.
 */

const target = { app: 'shop', proc: 'web', instance: 1 };
const PING_MS = 200;

/** A broker that accepts every upgrade (telling its ping interval) and hands the socket to `onOpen`. */
async function broker(onOpen: (n: number, ws: WebSocket) => void): Promise<FakeBroker> {
  const fake = new FakeBroker((n, req, socket, head) => fake.accept(req, socket, head, (ws) => onOpen(n, ws)));
  fake.wss.on('headers', (headers) => headers.push(`Entry-Ping-Interval: ${PING_MS}`));
  return fake.start();
}

/** An HTTP answer to an upgrade, as a proxy in front of the broker writes one. */
const answer = (status: number, text: string, type: string, body: string) =>
  `HTTP/1.1 ${status} ${text}\r\ncontent-type: ${type}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;

const failureOf = (p: Promise<unknown>) =>
  p.then(
    () => expect.unreachable('run() resolved'),
    (e: unknown) => e as Error & { code?: string },
  );

describe('run() when the broker or the network fails', () => {
  let fake: FakeBroker | undefined;
  afterEach(async () => {
    await fake?.stop();
    fake = undefined;
  });

  it('rejects with the error of a stdin stream that fails before the session is open, and ends the session', async () => {
    let closed: Promise<number> | undefined;
    fake = await broker((_n, ws) => (closed = new Promise((r) => ws.once('close', r))));
    const err = await failureOf(run({ broker: fake.url, token: 't', target, command: ['cat'], stdin: createReadStream('/nonexistent/input.txt') }));
    expect(err.code).toBe('ENOENT');
    expect(closed).toBeDefined();
    await closed;
  });

  it('takes a link that goes silent right after the upgrade for lost, without resume', async () => {
    fake = await broker(() => undefined);
    const started = Date.now();
    const err = await failureOf(run({ broker: fake.url, token: 't', target, command: ['true'], resume: false }));
    expect(err).toBeInstanceOf(ClientError);
    expect(err.code).toBe('ENTRY_CONNECTION_LOST');
    // Three pings and the margin (2.6 s), looked at every 200 ms.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('gives up a resume whose connection opens and is never answered, when the grace period ends', async () => {
    fake = await broker((n, ws) => {
      if (n > 1) return; // Upgraded, then nothing: RESUME is never answered.
      ws.once('message', (data: Buffer) => {
        if (decodeRequest(data).msgType !== RequestType.START) return;
        ws.send(encodeResponse(ResponseType.RESUMABLE, encodeResumeTicket({ session: 's-1', token: Buffer.from('resume-token'), outputOffset: 0, inputOffset: 0, graceMs: 3_000, pingIntervalMs: PING_MS })));
        ws.send(encodeResponse(ResponseType.STDOUT, utf8('before\n')));
        setTimeout(() => ws.terminate(), 100);
      });
    });
    const started = Date.now();
    const err = await failureOf(run({ broker: fake.url, token: 't', target, command: ['work'] }));
    expect(err.code).toBe('ENTRY_RESUME_EXPIRED');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(fake.upgrades.length).toBeGreaterThanOrEqual(2);
  }, 20_000);

  it("says the broker's code and message from the body of an upgrade it refuses, and the status alone for any other body", async () => {
    const held: Duplex[] = [];
    const answers = [
      rawAnswer({ status: 404, code: 'ENTRY_NOT_FOUND', message: 'not found: /x/enter' }),
      answer(502, 'Bad Gateway', 'text/html', '<html>bad gateway</html>'),
      // A proxy's JSON: its word is no code of the registry.
      answer(502, 'Bad Gateway', 'application/json', '{"error":"Bad Gateway","message":"upstream down"}'),
      // The broker's JSON past what is read of a body: not taken, and not waited for.
      answer(404, 'Not Found', 'application/json', JSON.stringify({ error: 'ENTRY_NOT_FOUND', message: 'x', pad: 'a'.repeat(REFUSAL_BODY_MAX_BYTES) })),
    ];
    fake = await new FakeBroker((n, _req, socket) => {
      if (n <= answers.length) socket.end(answers[n - 1]);
      else {
        // A body that never comes whole: the status is said once the wait for it is over.
        held.push(socket);
        socket.write('HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"error":"ENTRY_BAD_');
      }
    }).start();
    try {
      const tries = answers.length + 1;
      const errors: Array<Error & { code?: string; httpStatus?: number }> = [];
      for (let i = 0; i < tries; i++) errors.push(await failureOf(run({ broker: fake.url, token: 't', target, command: ['true'], resume: false })));
      expect(errors.map((e) => [e.code, e.message, e.httpStatus])).toEqual([
        ['ENTRY_NOT_FOUND', 'not found: /x/enter', 404],
        ['ENTRY_CONNECT_FAILED', 'broker answered HTTP 502 Bad Gateway', 502],
        ['ENTRY_CONNECT_FAILED', 'broker answered HTTP 502 Bad Gateway', 502],
        ['ENTRY_CONNECT_FAILED', 'broker answered HTTP 404 Not Found', 404],
        ['ENTRY_CONNECT_FAILED', 'broker answered HTTP 401 Unauthorized', 401],
      ]);
      expect(errors.every((e) => e instanceof ClientError)).toBe(true);
    } finally {
      for (const s of held) s.destroy();
    }
  }, REFUSAL_BODY_WAIT_MS + 10_000);

  it('refuses a broker address that is no URL, and a certificate without its key, as ClientErrors', async () => {
    for (const address of ['ftp://127.0.0.1:1', 'entry.example.com']) {
      const err = await failureOf(run({ broker: address, token: 't', target, command: ['true'] }));
      expect(err, address).toBeInstanceOf(ClientError);
      expect(err.code, address).toBe('ENTRY_BAD_REQUEST');
    }
    const noKey = await failureOf(run({ broker: 'https://127.0.0.1:1', token: 't', target, command: ['true'], cert: 'PEM' }));
    expect(noKey).toBeInstanceOf(ClientError);
    expect(noKey.message).toMatch(/a client certificate needs its key/);
  });

  it('keeps input within its window and resumes later when the broker said it resumes but opens the exec slowly', async () => {
    // Longer than the client waits for RESUMABLE from a broker that has not said it resumes.
    const OPEN_MS = TICKET_WAIT_MS + 1_000;
    const INPUT_BYTES = 4 * 1024 * 1024;
    let inputBeforeTicket = -1;
    const resumed: Array<string | undefined> = [];
    fake = new FakeBroker((n, req, socket, head) =>
      fake!.accept(req, socket, head, (ws) => {
        if (n > 1) {
          resumed.push(req.headers['entry-resume'] as string | undefined);
          ws.send(encodeResponse(ResponseType.EXIT, utf8('0')));
          ws.close();
          return;
        }
        let input = 0;
        ws.on('message', (data: Buffer) => {
          const m = decodeRequest(data);
          if (m.msgType === RequestType.PLAIN) input += m.content.length;
          if (m.msgType !== RequestType.START) return;
          setTimeout(() => {
            inputBeforeTicket = input;
            ws.send(encodeResponse(ResponseType.RESUMABLE, encodeResumeTicket({ session: 's1', token: utf8('k'), outputOffset: 0, inputOffset: 0, graceMs: 8_000 })));
            // The link breaks once the session is open: a resume must follow.
            setTimeout(() => ws.terminate(), 50);
          }, OPEN_MS);
        });
      }),
    );
    fake.wss.on('headers', (headers) => headers.push('Entry-Resume-Grace: 8000'));
    await fake.start();
    const running = run({ broker: fake.url, token: 't', target, command: ['cat'], stdin: Buffer.alloc(INPUT_BYTES, 0x61) }).catch((e: unknown) => e);
    await expect.poll(() => resumed.length, { timeout: OPEN_MS + 10_000 }).toBe(1);
    expect(resumed).toEqual(['s1']);
    // The window (1 MiB unacknowledged, sent in chunks of at most 256 KiB) held while it waited.
    expect(inputBeforeTicket).toBeGreaterThan(0);
    expect(inputBeforeTicket).toBeLessThanOrEqual(1024 * 1024 + 256 * 1024);
    await running;
  }, 30_000);
});

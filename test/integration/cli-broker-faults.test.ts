import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { ERRORS } from '../../broker/errors.js';
import { rawAnswer } from '../../broker/http/raw-answer.js';
import { decodeRequest, encodeResponse, encodeResumeTicket, RequestType, ResponseType, utf8 } from '../../proto/codec.js';
import { runCli } from '../helpers/cli.js';
import { eventually } from '../helpers/sessions.js';
import { FakeBroker } from '../helpers/fake-broker.js';

/**
 * The CLI against a stand-in broker on loopback that answers what a real one does not: plain
 * HTTP refusals (a proxy in front), malformed frames, a connection cut after EXIT.
 */

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno`);
}

const send = (ws: WebSocket, type: number, content: Uint8Array | string = '', code = '') => ws.send(encodeResponse(type, typeof content === 'string' ? utf8(content) : content, code));
const ticket = (outputOffset: number, graceMs: number) => encodeResumeTicket({ session: 's-1', token: Buffer.from('resume-token'), outputOffset, inputOffset: 0, graceMs });

/** Calls `fn` once the client's first message (START or RESUME) arrives. */
function onFirstMessage(ws: WebSocket, fn: (type: number) => void): void {
  ws.once('message', (data: Buffer) => fn(decodeRequest(data).msgType));
}

describe('the enter CLI when the broker or a proxy misbehaves', () => {
  let fake: FakeBroker | undefined;
  afterEach(async () => {
    await fake?.stop();
    fake = undefined;
  });
  const enter = (args: string[]) => runCli(args, { ENTRY_BROKER: fake!.url, ENTRY_TOKEN: 'a-token', ENTRY_CONFIG_DIR: '/nonexistent' });

  it('says which HTTP status refused the upgrade, gives a hint and exits 255, without a stack trace', async () => {
    // The hint follows the status: a token to renew, a grant missing, not a broker, a broker down.
    const hints = { 401: /ENTRY_TOKEN/, 403: /grant|app|admin/i, 404: /address of an Entry broker/, 502: /the broker is running/ };
    for (const [status, text] of [[401, 'Unauthorized'], [403, 'Forbidden'], [404, 'Not Found'], [502, 'Bad Gateway']] as const) {
      fake = await new FakeBroker((_n, _req, socket) => refuse(socket, status, text)).start();
      const r = await enter(['app', 'web', '1', '--', 'true']);
      const lines = r.stderr.toString().split('\n');
      expect(r.status, String(status)).toBe(255);
      expect(lines[0], String(status)).toBe(`enter: broker answered HTTP ${status} ${text}`);
      expect(lines[1], `the hint for ${status}`).toMatch(/^ {2}\S/);
      expect(lines[1], `the hint for ${status}`).toMatch(hints[status]);
      expect(lines.slice(2).join(''), String(status)).toBe('');
      await fake.stop();
      fake = undefined;
    }
  });

  it('keeps resuming while a proxy answers 502 for the broker, and the session carries on: exit 7', async () => {
    fake = await new FakeBroker((n, req, socket, head) => {
      if (n === 2 || n === 3) return refuse(socket, 502, 'Bad Gateway');
      fake!.accept(req, socket, head, (ws) =>
        onFirstMessage(ws, (type) => {
          if (n === 1 && type === RequestType.START) {
            send(ws, ResponseType.RESUMABLE, ticket(0, 10_000));
            send(ws, ResponseType.STDOUT, 'before\n');
            setTimeout(() => ws.terminate(), 100);
          } else if (type === RequestType.RESUME) {
            send(ws, ResponseType.RESUMABLE, ticket(7, 10_000));
            send(ws, ResponseType.STDOUT, 'after\n');
            send(ws, ResponseType.EXIT, '7');
            send(ws, ResponseType.CLOSE, 'exited with code 7');
            ws.close();
          }
        }),
      );
    }).start();
    const r = await enter(['app', 'web', '1', '--', 'work']);
    expect(r.stderr.toString()).toBe('enter: connection lost, reconnecting…\n');
    expect(r.stdout.toString()).toBe('before\nafter\n');
    expect(r.status).toBe(7);
    expect(fake.upgrades.length).toBe(4);
    expect(fake.upgrades.slice(1).every((u) => u.headers['entry-resume'] === 's-1')).toBe(true);
  }, 20_000);

  it("keeps resuming while the broker's HTTP answer to the upgrade refuses it for the moment (503 ENTRY_DRAINING), and the session carries on: exit 7", async () => {
    fake = await new FakeBroker((n, req, socket, head) => {
      if (n === 2 || n === 3) return void socket.end(rawAnswer({ status: 503, code: 'ENTRY_DRAINING', message: ERRORS.ENTRY_DRAINING.message }));
      fake!.accept(req, socket, head, (ws) =>
        onFirstMessage(ws, (type) => {
          if (n === 1 && type === RequestType.START) {
            send(ws, ResponseType.RESUMABLE, ticket(0, 10_000));
            send(ws, ResponseType.STDOUT, 'before\n');
            setTimeout(() => ws.terminate(), 100);
          } else if (type === RequestType.RESUME) {
            send(ws, ResponseType.RESUMABLE, ticket(7, 10_000));
            send(ws, ResponseType.STDOUT, 'after\n');
            send(ws, ResponseType.EXIT, '7');
            send(ws, ResponseType.CLOSE, 'exited with code 7');
            ws.close();
          }
        }),
      );
    }).start();
    const r = await enter(['app', 'web', '1', '--', 'work']);
    expect(r.stdout.toString()).toBe('before\nafter\n');
    expect(r.status).toBe(7);
    expect(fake.upgrades.length).toBe(4);
  }, 20_000);

  it('says the last HTTP answer a resume was refused with when the grace period ends: exit 255', async () => {
    fake = await new FakeBroker((n, req, socket, head) => {
      if (n > 1) return refuse(socket, 502, 'Bad Gateway');
      fake!.accept(req, socket, head, (ws) =>
        onFirstMessage(ws, () => {
          send(ws, ResponseType.RESUMABLE, ticket(0, 1_500));
          send(ws, ResponseType.STDOUT, 'before\n');
          setTimeout(() => ws.terminate(), 100);
        }),
      );
    }).start();
    const r = await enter(['app', 'web', '1', '--', 'work']);
    expect(r.stdout.toString()).toBe('before\n');
    expect(r.status).toBe(255);
    expect(fake.upgrades.length).toBeGreaterThanOrEqual(3);
    expect(r.stderr.toString()).toContain('could not be resumed in time (the last refusal: broker answered HTTP 502 Bad Gateway)');
  }, 20_000);

  it('tries a resume again while the broker reached cannot hand it on (ENTRY_HANDOFF_REFUSED), and says that refusal when the grace period ends: exit 255', async () => {
    const line = `\r\n\x1b[31mentry: ${ERRORS.ENTRY_HANDOFF_REFUSED.message}: request r-7\x1b[0m\r\n`;
    fake = await new FakeBroker((n, req, socket, head) => {
      fake!.accept(req, socket, head, (ws) =>
        onFirstMessage(ws, (type) => {
          if (n === 1 && type === RequestType.START) {
            send(ws, ResponseType.RESUMABLE, ticket(0, 2_500));
            send(ws, ResponseType.STDOUT, 'before\n');
            setTimeout(() => ws.terminate(), 100);
          } else if (type === RequestType.RESUME) {
            send(ws, ResponseType.CLOSE, line, 'ENTRY_HANDOFF_REFUSED');
            ws.close(ERRORS.ENTRY_HANDOFF_REFUSED.close, 'ENTRY_HANDOFF_REFUSED');
          }
        }),
      );
    }).start();
    const r = await enter(['app', 'web', '1', '--', 'work']);
    expect(r.stdout.toString()).toBe('before\n');
    expect(r.status).toBe(255);
    // Tried again after the refusal, not ended by it.
    expect(fake.upgrades.length).toBeGreaterThanOrEqual(3);
    expect(r.stderr.toString()).toContain(`could not be resumed in time (the last refusal: ${ERRORS.ENTRY_HANDOFF_REFUSED.message}: request r-7)`);
    expect(r.stderr.toString()).not.toContain('\x1b[31m');
  }, 20_000);

  it('keeps the exit status that arrived when the connection breaks before CLOSE, and does not wait for the grace period', async () => {
    fake = await new FakeBroker((n, req, socket, head) => {
      if (n > 1) return refuse(socket, 502, 'Bad Gateway');
      fake!.accept(req, socket, head, (ws) =>
        onFirstMessage(ws, () => {
          send(ws, ResponseType.RESUMABLE, ticket(0, 60_000));
          send(ws, ResponseType.STDOUT, 'done\n');
          send(ws, ResponseType.EXIT, '7');
          setTimeout(() => ws.terminate(), 100);
        }),
      );
    }).start();
    const started = Date.now();
    const r = await enter(['app', 'web', '1', '--', 'work']);
    expect(r.stdout.toString()).toBe('done\n');
    expect(r.stderr.toString()).toBe('');
    expect(r.status).toBe(7);
    expect(Date.now() - started).toBeLessThan(5_000);
  }, 20_000);

  it('exits 255 with a clear line when EXIT carries no number', async () => {
    for (const content of ['', 'abc', '7x', '-1', '256', ' 7']) {
      fake = await new FakeBroker((_n, req, socket, head) =>
        fake!.accept(req, socket, head, (ws) =>
          onFirstMessage(ws, () => {
            send(ws, ResponseType.STDOUT, 'out\n');
            send(ws, ResponseType.EXIT, content);
            send(ws, ResponseType.CLOSE, 'exited');
            ws.close();
          }),
        ),
      ).start();
      const r = await enter(['app', 'web', '1', '--', 'work']);
      expect(r.stdout.toString(), JSON.stringify(content)).toBe('out\n');
      expect(r.stderr.toString(), JSON.stringify(content)).toBe(`enter: the broker sent a malformed exit status: ${JSON.stringify(content)}\n`);
      expect(r.status, JSON.stringify(content)).toBe(255);
      await fake.stop();
      fake = undefined;
    }
  });

  it('a truncated frame ends the session with a clear line and exit 255, not a silent gap in the output', async () => {
    fake = await new FakeBroker((_n, req, socket, head) =>
      fake!.accept(req, socket, head, (ws) =>
        onFirstMessage(ws, () => {
          send(ws, ResponseType.STDOUT, 'hello\n');
          ws.send(encodeResponse(ResponseType.STDOUT, utf8('world\n')).subarray(0, 5));
          send(ws, ResponseType.STDOUT, 'not shown\n');
          send(ws, ResponseType.EXIT, '0');
        }),
      ),
    ).start();
    const r = await enter(['app', 'web', '1', '--', 'work']);
    expect(r.stdout.toString()).toBe('hello\n');
    expect(r.stderr.toString()).toBe('enter: the broker sent a malformed message\n');
    expect(r.status).toBe(255);
  });

  it('a resume ticket that cannot be read ends the session as a malformed message (close 1007), not a session whose output stalls unacknowledged', async () => {
    let closedWith: number | undefined;
    fake = await new FakeBroker((_n, req, socket, head) =>
      fake!.accept(req, socket, head, (ws) => {
        ws.once('close', (code) => (closedWith = code));
        onFirstMessage(ws, () => {
          send(ws, ResponseType.STDOUT, 'hello\n');
          send(ws, ResponseType.RESUMABLE, Uint8Array.of(0xff, 0xff, 0xff));
          send(ws, ResponseType.STDOUT, 'not shown\n');
        });
      }),
    ).start();
    const r = await enter(['app', 'web', '1', '--', 'work']);
    expect(r.stdout.toString()).toBe('hello\n');
    expect(r.stderr.toString()).toBe('enter: the broker sent a malformed resume ticket\n');
    expect(r.status).toBe(255);
    await eventually(async () => closedWith !== undefined, 'the close at the broker', 2_000);
    expect(closedWith).toBe(1007);
  });

  it('enter watch: a truncated frame stops the watch with a clear line and exit 255', async () => {
    fake = await new FakeBroker((_n, req, socket, head) =>
      fake!.accept(req, socket, head, (ws) => {
        send(ws, ResponseType.STDOUT, 'hello\n');
        ws.send(encodeResponse(ResponseType.STDOUT, utf8('world\n')).subarray(0, 5));
        send(ws, ResponseType.STDOUT, 'not shown\n');
      }),
    ).start();
    const r = await enter(['watch', 'some-session']);
    expect(r.stdout.toString()).toBe('hello\n');
    expect(r.stderr.toString()).toBe('enter: the broker sent a malformed message; the watch is stopped\n');
    expect(r.status).toBe(255);
    expect(fake.upgrades[0]!.url).toBe('/watch?session=some-session');
  });

  it("enter watch: an HTTP refusal says the broker's own words when its body has them, else which status; exit 255", async () => {
    fake = await new FakeBroker((_n, _req, socket) => refuse(socket, 502, 'Bad Gateway')).start();
    const r = await enter(['watch', 'some-session']);
    expect(r.stderr.toString().split('\n')[0]).toBe('enter: broker answered HTTP 502 Bad Gateway');
    expect(r.status).toBe(255);
    await fake.stop();
    // The broker's own refusal, with its code in the body: its words, not the status.
    fake = await new FakeBroker((_n, _req, socket) => socket.end(rawAnswer({ status: 403, code: 'ENTRY_NOT_ADMIN', message: 'watching a session needs the admin role' }))).start();
    const own = await enter(['watch', 'some-session']);
    expect(own.stderr.toString().split('\n')[0]).toBe('enter: watching a session needs the admin role');
    expect(own.status).toBe(255);
  });
});

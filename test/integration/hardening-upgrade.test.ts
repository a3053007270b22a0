import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encodeExecSpec, RequestType } from '../../proto/codec.js';
import { type BrokerProcess, startBrokerProcess } from '../helpers/broker-process.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { healthz } from '../helpers/hardening.js';
import { rawHttp } from '../helpers/raw-http.js';

/**
 * Upgrades no session comes of: refused ones whose client resets the connection at once,
 * request targets that are not paths, and web-mode clients that flood or leave while their
 * credentials are checked. The broker stays up, keeps nothing and starts no exec for them.
 */

const MiB = 1024 * 1024;

/** Sends `request` and resets the connection at once (RST, not FIN), as a killed client does. */
function sendAndReset(port: number, request: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(request, () => {
        socket.resetAndDestroy();
        resolve();
      });
    });
    socket.on('error', () => resolve());
  });
}

/** One client-to-server WebSocket frame; a zero mask key leaves the payload as it is. */
function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(14);
  head[0] = 0x80 | opcode;
  head[1] = 0x80 | 127;
  head.writeBigUInt64BE(BigInt(payload.length), 2);
  return Buffer.concat([head, payload]);
}

/** Resolves when the broker writes its next log output (or after a while without any). */
function nextLogOutput(broker: BrokerProcess): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1_000);
    broker.child.stderr!.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

const upgrade = (path: string, extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`;

describe('upgrades that no session comes of', () => {
  const containers = new TestContainers();
  const app = uniqueApp('hu');
  let broker: BrokerProcess;
  let port: number;

  beforeAll(async () => {
    broker = await startBrokerProcess();
    port = Number(new URL(broker.url).port);
    await containers.entry(app, 'web', 1);
  });

  afterAll(async () => {
    await broker?.stop();
    await containers.removeAll();
  });

  it('survives clients resetting the connection while their upgrade is refused over HTTP', async () => {
    const refusedOverHttp = [upgrade('/nowhere'), upgrade('/enter', 'Origin: https://elsewhere.example\r\n'), upgrade('//'), upgrade('*')];
    for (let round = 0; round < 30; round++) {
      await Promise.all(refusedOverHttp.map((r) => sendAndReset(port, r)));
    }
    expect(await healthz(broker.url)).toBe(200);
    const exited = await Promise.race([broker.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 200))]);
    expect(exited).toBe('running');
    expect(broker.logs.filter((l) => l.includes('internal fault') || l.includes('uncaught'))).toEqual([]);
  });

  it('answers a request target that is not a path with 400, and `//` as any unknown path', async () => {
    const ask = (head: string) => rawHttp(port, { head: head.replace(/\r\n\r\n$/, '\r\nConnection: close\r\n\r\n'), timeoutMs: 5_000, answers: 1 });
    for (const head of ['GET * HTTP/1.1\r\nHost: x\r\n\r\n', upgrade('*')]) {
      const answer = await ask(head);
      expect(answer.statuses, head.split('\r\n')[0]).toEqual([400]);
      expect(answer.text).toContain('ENTRY_BAD_REQUEST');
    }
    for (const head of ['GET // HTTP/1.1\r\nHost: x\r\n\r\n', upgrade('//')]) {
      expect((await ask(head)).statuses, head.split('\r\n')[0]).toEqual([404]);
    }
    // The absolute form, which HTTP/1.1 servers must accept, still reaches its route.
    expect((await ask(`GET http://127.0.0.1:${port}/healthz HTTP/1.1\r\nHost: x\r\n\r\n`)).statuses).toEqual([200]);
    expect(broker.logs.filter((l) => l.includes('internal fault'))).toEqual([]);
  });

  it('cuts a refused web-mode client that goes on sending, keeping none of it', async () => {
    const before = broker.rss();
    // A raw client: it never reads, so it never answers the broker's close frame either.
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(upgrade('/enter?method=web'));
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.pause();
    // Not JSON: refused. The client goes on and sends 256 MiB in 1 MiB messages.
    socket.write(maskedFrame(0x1, Buffer.from('x')));
    const message = maskedFrame(0x2, Buffer.alloc(MiB, 0x61));
    let sent = 0;
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    while (sent < 256 && !socket.destroyed) {
      sent++;
      if (!socket.write(message)) await Promise.race([new Promise((r) => socket.once('drain', r)), closed]);
    }
    await closed;
    const grown = broker.rss() - before;
    // Cut once REFUSED_READ_MAX_BYTES had come: the rest of the first message, and what the
    // kernels' buffers took, never went further.
    expect(sent, 'messages written before the cut').toBeLessThan(32);
    expect(grown).toBeLessThan(32 * MiB);
  });

  it('takes the input that comes behind a web-mode credentials message in the read that completes it', async () => {
    const token = await broker.mint({ apps: [app] });
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    socket.write(upgrade('/enter?method=web', 'Sec-WebSocket-Protocol: entry.v1\r\n'));
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    const input = Buffer.alloc(100 * 1024, 0x62);
    const argv = ['sh', '-c', `head -c ${input.length} | wc -c`].map((a) => Buffer.from(a));
    const creds = maskedFrame(0x1, Buffer.from(JSON.stringify({ access_token: token, app_name: app, proc_name: 'web', instance_no: '1' })));
    const start = maskedFrame(0x1, Buffer.from(JSON.stringify({ msgType: RequestType.START, content: Buffer.from(encodeExecSpec({ argv })).toString('base64') })));
    const stdin = maskedFrame(0x1, Buffer.from(JSON.stringify({ content: input.toString('base64') })));
    // The credentials' first bytes alone, then the rest with START and the input in one write:
    // the read that completes the credentials brings the 64 KiB the broker reads of an unknown
    // caller on top of those first bytes. (The pause lets the first write be read on its own.)
    socket.write(creds.subarray(0, 100));
    await new Promise((r) => setTimeout(r, 200));
    socket.write(Buffer.concat([creds.subarray(100), start, stdin]));
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const answer = Buffer.concat(received).toString('latin1');
    // wc's answer, base64 in the JSON STDOUT message.
    expect(answer).toContain(Buffer.from(`${input.length}\n`).toString('base64'));
  });

  it('leaves no session behind for web-mode clients that leave while their credentials are checked', async () => {
    const token = await broker.mint({ apps: [app] });
    const creds = JSON.stringify({ access_token: token, app_name: app, proc_name: 'web', instance_no: '1' });
    const CLIENTS = 20;
    // The broker is shared with the tests before: only what it logs from here on counts.
    const from = broker.logs.length;
    for (let i = 0; i < CLIENTS; i++) {
      const ws = new WebSocket(`${broker.wsUrl}?method=web`, { perMessageDeflate: false });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => ws.send(creds, () => {
          ws.terminate();
          resolve();
        }));
        ws.once('error', reject);
      });
    }
    // Each client is accounted for once: never admitted, or admitted and its session ended.
    const count = (text: string) => broker.logs.slice(from).filter((l) => l.includes(text)).length;
    const outcomes = () => count('"upgrade abandoned"') + count('"session refused"') + count('"session end"');
    const deadline = Date.now() + 15_000;
    while (outcomes() < CLIENTS && Date.now() < deadline) await nextLogOutput(broker);
    expect(outcomes()).toBe(CLIENTS);
    expect(count('"session end"')).toBe(count('"session start"'));
    const admin = await broker.mint({ apps: ['*'], roles: ['entry-admin'] }, 'root');
    const list = (await (await fetch(`${broker.url}/api/sessions`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { sessions: unknown[] };
    expect(list.sessions).toEqual([]);
  });
});

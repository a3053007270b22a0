import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { decodeRequest, encodeRequest, RequestFramer, RequestType } from '../../proto/codec.js';

const servers: WebSocketServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    for (const c of s.clients) c.terminate();
    await new Promise((resolve) => s.close(resolve));
  }
});

describe('RequestFramer', () => {
  it('encodes the same bytes as encodeRequest, for every request type and size', () => {
    const framer = new RequestFramer();
    for (const type of Object.values(RequestType)) {
      for (const size of [0, 1, 127, 128, 16_383, 16_384, 300_000, 5]) {
        const content = new Uint8Array(size).map((_, i) => (i * 7 + type) & 0xff);
        expect(Buffer.compare(framer.frame(type, content), encodeRequest(type, content))).toBe(0);
      }
    }
  });

  it('leaves nothing of a longer earlier frame in a shorter later one', () => {
    const framer = new RequestFramer();
    framer.frame(RequestType.PLAIN, new Uint8Array(1000).fill(0x41));
    const short = framer.frame(RequestType.PLAIN, new Uint8Array([0x42]));
    expect(decodeRequest(short).content).toEqual(new Uint8Array([0x42]));
    expect(short.length).toBe(3);
  });

  // The framer's contract with its callers: ws's client copies a frame before send returns.
  it('delivers every frame as sent through a ws client, even while the socket is congested and ws queues', async () => {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 1 << 20 });
    servers.push(server);
    await once(server, 'listening');
    const received: Uint8Array[] = [];
    const done = new Promise<void>((resolve) => {
      server.on('connection', (peer) => {
        // Nothing is read for a while: the client's writes back up into ws's and Node's buffers.
        peer.pause();
        setTimeout(() => peer.resume(), 200);
        peer.on('message', (data: Buffer) => {
          received.push(decodeRequest(new Uint8Array(data)).content);
          if (received.length === 40) resolve();
        });
      });
    });
    const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, { perMessageDeflate: false });
    await once(client, 'open');
    const framer = new RequestFramer();
    for (let i = 0; i < 40; i++) client.send(framer.frame(RequestType.PLAIN, new Uint8Array(256 * 1024).fill(i)));
    expect(client.bufferedAmount).toBeGreaterThan(1024 * 1024);
    await done;
    client.terminate();
    for (let i = 0; i < 40; i++) {
      expect(received[i]!.length).toBe(256 * 1024);
      expect(received[i]!.every((b) => b === i)).toBe(true);
    }
  });
});

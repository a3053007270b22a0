import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocketServer } from 'ws';
import { encodeRequest, RequestType } from '../../proto/codec.js';
import { wsPair } from './helpers/ws-pair.js';
import { EARLY_INPUT_HIGH_WATER_BYTES, WsTerminal } from '../../broker/transport/ws-terminal.js';

const CHUNK = 64 * 1024;
const TOTAL = 16 * 1024 * 1024;

describe('input that arrives before the process starts', () => {
  let wss: WebSocketServer | undefined;
  afterEach(() => new Promise<void>((r) => (wss ? wss.close(() => r()) : r())));

  it('is held up to its bound, then waits in the client, and all of it reaches the process in order once it starts', async () => {
    const pair = await wsPair({ perMessageDeflate: false });
    wss = pair.wss;
    const { client, server } = pair;
    const terminal = new WsTerminal(server, { protocol2: true, tty: false });
    try {
      // Each chunk carries its own number, so order and completeness can be checked.
      let sent = 0;
      let sentWhenPaused = -1;
      while (sent < TOTAL) {
        const chunk = Buffer.alloc(CHUNK, (sent / CHUNK) % 251);
        client.send(encodeRequest(RequestType.PLAIN, chunk));
        sent += CHUNK;
        if (client.bufferedAmount > 4 * 1024 * 1024) await new Promise((r) => setTimeout(r, 5));
        else await new Promise((r) => setImmediate(r));
        if (server.isPaused && sentWhenPaused < 0) sentWhenPaused = sent;
      }
      expect(sentWhenPaused, 'bytes sent when the broker stopped reading').toBeGreaterThanOrEqual(EARLY_INPUT_HIGH_WATER_BYTES);
      expect(sentWhenPaused).toBeLessThan(TOTAL);
      expect(server.isPaused).toBe(true);

      const received: Buffer[] = [];
      let receivedBytes = 0;
      const all = new Promise<void>((resolve) => {
        terminal.start({
          input: (data) => {
            received.push(Buffer.from(data));
            receivedBytes += data.length;
            if (receivedBytes >= TOTAL) resolve();
          },
          resize: () => undefined,
          inputEnd: () => undefined,
          signal: () => undefined,
          drain: () => undefined,
          gone: () => resolve(),
        });
      });
      await all;
      const data = Buffer.concat(received);
      expect(data.length).toBe(TOTAL);
      for (let at = 0; at < TOTAL; at += CHUNK) expect(data[at], `chunk at ${at}`).toBe((at / CHUNK) % 251);
    } finally {
      client.terminate();
    }
  });
});

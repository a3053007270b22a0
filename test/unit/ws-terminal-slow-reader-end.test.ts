import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocketServer } from 'ws';
import { decodeResponse, ResponseType } from '../../proto/codec.js';
import { wsPair } from './helpers/ws-pair.js';
import { WsTerminal } from '../../broker/transport/ws-terminal.js';

/**
 * ws drops a socket a fixed time after `close()` (30 s; 300 ms here), whatever is still queued.
 * A session's end must not start that clock while ws still holds output a slow client has not
 * taken: the close frame goes once the end has left ws's queue.
 */
describe("a session's end to a client that reads slowly", () => {
  let wss: WebSocketServer | undefined;
  afterEach(() => new Promise<void>((r) => (wss ? wss.close(() => r()) : r())));

  it('reaches the client whole, EXIT and CLOSE last, though it reads nothing for longer than ws waits after a close', async () => {
    const pair = await wsPair({ closeTimeout: 300 });
    wss = pair.wss;
    const { client, server } = pair;
    const messages: Array<{ type: number; bytes: number }> = [];
    client.on('message', (data: Buffer) => {
      const m = decodeResponse(data);
      messages.push({ type: m.msgType, bytes: m.content.length });
    });
    const closed = new Promise<number>((r) => client.once('close', r));
    // The client stops reading: its kernel fills, then the broker's, then ws queues.
    (client as unknown as { _socket: Socket })._socket.pause();
    const terminal = new WsTerminal(server, { protocol2: true, tty: false });
    terminal.start({ input: () => undefined, resize: () => undefined, inputEnd: () => undefined, signal: () => undefined, drain: () => undefined, gone: () => undefined });
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    while (server.bufferedAmount < 1024 * 1024) {
      terminal.send('stdout', chunk);
      sent += chunk.length;
      await new Promise((r) => setImmediate(r));
    }
    const finished = terminal.finish({ kind: 'exited', exitCode: 0 });
    // Three times ws's wait after a close, then the client reads again.
    await new Promise((r) => setTimeout(r, 900));
    (client as unknown as { _socket: Socket })._socket.resume();
    expect(await closed).toBe(1000);
    await finished;
    const out = messages.filter((m) => m.type === ResponseType.STDOUT).reduce((n, m) => n + m.bytes, 0);
    expect(out).toBe(sent);
    expect(messages.slice(-2).map((m) => m.type)).toEqual([ResponseType.EXIT, ResponseType.CLOSE]);
  }, 15_000);
});

import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { encodeRequest, RequestType, utf8 } from '../../proto/codec.js';
import type { EntryError } from '../../broker/errors.js';
import type { FaultSite } from '../../broker/fault.js';
import { WsTerminal } from '../../broker/transport/ws-terminal.js';

describe('a fault in a socket event handler', () => {
  let wss: WebSocketServer | undefined;
  afterEach(() => new Promise<void>((r) => (wss ? wss.close(() => r()) : r())));

  it('stays with its session: reported, the session ends with ENTRY_INTERNAL, nothing reaches the process', async () => {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss!.once('listening', r));
    const accepted = new Promise<WebSocket>((r) => wss!.once('connection', r));
    const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
    await new Promise((r) => client.once('open', r));
    const server = await accepted;
    const faults: Array<{ where: FaultSite; err: unknown }> = [];
    const terminal = new WsTerminal(server, { protocol2: true, tty: false, fault: (where, err) => faults.push({ where, err }) });
    const ended = new Promise<EntryError | undefined>((resolve) =>
      terminal.start({
        input: () => {
          throw new TypeError('a bug in the input path');
        },
        resize: () => undefined,
        inputEnd: () => undefined,
        signal: () => undefined,
        drain: () => undefined,
        gone: resolve,
      }),
    );
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      client.send(encodeRequest(RequestType.PLAIN, utf8('x')));
      const error = await ended;
      expect(error?.code).toBe('ENTRY_INTERNAL');
      expect(faults.map((f) => [f.where, (f.err as Error).message])).toEqual([['socket', 'a bug in the input path']]);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      client.terminate();
    }
  });
});

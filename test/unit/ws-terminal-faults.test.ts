import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocketServer } from 'ws';
import { encodeRequest, RequestType, utf8 } from '../../proto/codec.js';
import type { EntryError } from '../../broker/errors.js';
import type { FaultSite } from '../../broker/fault.js';
import { wsPair } from './helpers/ws-pair.js';
import { WsTerminal } from '../../broker/transport/ws-terminal.js';

describe('a fault in a socket event handler', () => {
  let wss: WebSocketServer | undefined;
  afterEach(() => new Promise<void>((r) => (wss ? wss.close(() => r()) : r())));

  it('stays with its session: reported, the session ends with ENTRY_INTERNAL, nothing reaches the process', async () => {
    const pair = await wsPair();
    wss = pair.wss;
    const { client, server } = pair;
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

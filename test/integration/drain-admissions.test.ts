import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { EntryBroker } from '../../broker/broker.js';
import { parseConfig } from '../../broker/config/config.js';
import { createLogger } from '../../broker/log.js';
import { ResponseType } from '../../proto/codec.js';
import { WireClient } from '../helpers/wire-client.js';

/**
 * A drain while callers are still being admitted: one whose token is being checked (the key
 * server here never answers) and a web-mode client yet to send its credentials. Each gets the
 * drain's reason at once instead of a connection cut by the broker's exit, and the drain does
 * not wait for the admission's own time limit.
 */
describe('a drain while callers are being admitted', () => {
  let silent: Server;
  const held: Socket[] = [];
  let broker: EntryBroker;
  const HANDSHAKE_TIMEOUT_MS = 20_000;

  beforeAll(async () => {
    silent = createServer((s) => held.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    broker = new EntryBroker(parseConfig({ listen: '127.0.0.1:0', 'recordings-dir': 'none', 'state-dir': 'none', 'jwks-url': `http://127.0.0.1:${port}/jwks`, 'handshake-timeout': HANDSHAKE_TIMEOUT_MS }), { log: createLogger('silent') });
    await broker.start();
  });
  afterAll(async () => {
    for (const s of held) s.destroy();
    await new Promise((r) => silent.close(r));
  });

  it('answers each with ENTRY_DRAINING before the broker stops', async () => {
    const wsUrl = `${broker.url.replace(/^http/, 'ws')}/enter`;
    const keyServerAsked = new Promise<void>((resolve) => silent.once('connection', () => resolve()));
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('alice').setExpirationTime('1h').sign(privateKey);
    // The upgrade completes only once the caller is admitted or refused.
    const checking = WireClient.connect(wsUrl, { 'access-token': token, 'app-name': 'demo', 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2' });
    const web = new WebSocket(`${wsUrl}?method=web`, { perMessageDeflate: false });
    let webLine = '';
    web.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString()) as { msgType?: number; content?: string };
      if (m.msgType === ResponseType.CLOSE) webLine = Buffer.from(m.content ?? '', 'base64').toString();
    });
    const webClosed = new Promise<number>((resolve) => web.on('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      web.once('open', () => resolve());
      web.once('error', reject);
    });
    await keyServerAsked;

    const t0 = Date.now();
    await broker.stop();
    const stopMs = Date.now() - t0;

    const c = await checking;
    const closed = await c.closed;
    expect(c.closeMessage()?.code).toBe('ENTRY_DRAINING');
    expect(closed.code).toBe(1001);
    expect(await webClosed).toBe(1001);
    expect(webLine).toContain('shutting down');
    expect(stopMs).toBeLessThan(HANDSHAKE_TIMEOUT_MS / 2);
  });
});

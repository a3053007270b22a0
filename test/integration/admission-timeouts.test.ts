import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EntryBroker } from '../../broker/broker.js';
import { parseConfig } from '../../broker/config/config.js';
import { createLogger } from '../../broker/log.js';
import { WireClient } from '../helpers/wire-client.js';

/**
 * An admission that takes too long names what did not answer. Here the key server (JWKS)
 * accepts connections and never answers: the refusal says the token could not be checked,
 * not that the Docker engine is unreachable.
 */
describe('admission that times out', () => {
  let silent: Server;
  const held: Socket[] = [];
  let broker: EntryBroker;

  beforeAll(async () => {
    silent = createServer((s) => held.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    broker = new EntryBroker(parseConfig({ listen: '127.0.0.1:0', 'recordings-dir': 'none', 'state-dir': 'none', 'jwks-url': `http://127.0.0.1:${port}/jwks`, 'handshake-timeout': 500 }), { log: createLogger('silent') });
    await broker.start();
  });
  afterAll(async () => {
    await broker?.stop();
    for (const s of held) s.destroy();
    await new Promise((r) => silent.close(r));
  });

  it('answers ENTRY_AUTH_UNAVAILABLE when the key server hangs', async () => {
    // Signed by a key made here: the broker never gets to check it, its key server being silent.
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('alice').setExpirationTime('1h').sign(privateKey);
    const c = await WireClient.connect(`${broker.url.replace(/^http/, 'ws')}/enter`, { 'access-token': token, 'app-name': 'demo', 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2' });
    const closed = await c.closed;
    expect(c.closeMessage()?.code).toBe('ENTRY_AUTH_UNAVAILABLE');
    expect(closed.code).toBe(4503);
    expect(held.length).toBeGreaterThan(0);
  });
});

import { readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { holderAnswers } from '../../broker/ledger/holder-probe.js';
import { issue, makeCa } from '../helpers/certs.js';

const ca = makeCa('Entry Probe Unit CA');
afterAll(() => rmSync(ca.dir, { recursive: true, force: true }));
const servers: Array<Server | ReturnType<typeof createHttpServer>> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))));
});

/** /healthz as a broker answers it: sameBroker when asked about itself. */
const health = (id: string) => (req: IncomingMessage, res: ServerResponse) => {
  const asked = new URL(req.url ?? '/', 'http://x').searchParams.get('broker');
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ status: 'ok', sameBroker: asked === id }));
};

async function listen(s: Server | ReturnType<typeof createHttpServer>, scheme: string): Promise<string> {
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `${scheme}://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

describe("asking a broker whose alive mark lapsed whether it still runs", () => {
  const holderCert = issue(ca, 'holder', { sans: ['127.0.0.1', 'entry.entry.svc'] });
  const shared = issue(ca, 'shared', { sans: ['entry.entry.svc'], both: true });
  const trust = createSecureContext({ ca: readFileSync(ca.cert) });

  it('over plain HTTP: yes as itself, no as another broker', async () => {
    const url = await listen(createHttpServer(health('b1')), 'http');
    expect(await holderAnswers({ broker: 'b1', url })).toBe(true);
    expect(await holderAnswers({ broker: 'b0', url })).toBe(false);
  });

  it('over TLS with a private CA: answered when the peer CA is trusted, not with the system CAs alone', async () => {
    const url = await listen(createHttpsServer({ cert: readFileSync(holderCert.cert), key: readFileSync(holderCert.key) }, health('b1')), 'https');
    expect(await holderAnswers({ broker: 'b1', url })).toBe(false);
    expect(await holderAnswers({ broker: 'b1', url }, 2_000, { secureContext: trust })).toBe(true);
  });

  it('under mTLS: answered when this broker presents a client certificate of the holder CA; a shared certificate checked against the peer name', async () => {
    const url = await listen(
      createHttpsServer({ cert: readFileSync(shared.cert), key: readFileSync(shared.key), ca: readFileSync(ca.cert), requestCert: true, rejectUnauthorized: true }, health('b1')),
      'https',
    );
    const withCert = createSecureContext({ ca: readFileSync(ca.cert), cert: readFileSync(shared.cert), key: readFileSync(shared.key) });
    expect(await holderAnswers({ broker: 'b1', url }, 2_000, { secureContext: trust, peerName: 'entry.entry.svc' })).toBe(false);
    // The pod's address is not in the shared certificate.
    expect(await holderAnswers({ broker: 'b1', url }, 2_000, { secureContext: withCert })).toBe(false);
    expect(await holderAnswers({ broker: 'b1', url }, 2_000, { secureContext: withCert, peerName: 'entry.entry.svc' })).toBe(true);
  });

  it('no answer from an address that is none, or a holder that does not answer in time', async () => {
    expect(await holderAnswers({ broker: 'b1', url: 'not a url' })).toBe(false);
    const url = await listen(createHttpServer(() => undefined), 'http');
    const started = Date.now();
    expect(await holderAnswers({ broker: 'b1', url }, 300)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

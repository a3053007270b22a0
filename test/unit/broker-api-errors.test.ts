import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { brokerText } from '../../client/cli/broker-api.js';
import { ClientError } from '../../client/protocol/client-error.js';
import { refusalFromBody } from '../../client/protocol/refusal-body.js';

let server: Server | undefined;
afterEach(async () => {
  await new Promise((r) => server?.close(r) ?? r(undefined));
  server = undefined;
});

/** A server on loopback answering every request with `status`, `type` and `body`. */
async function answering(status: number, type: string, body: string): Promise<string> {
  server = createServer((_req, res) => res.writeHead(status, { 'content-type': type }).end(body));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => expect.unreachable('resolved'),
    (e: unknown) => e as ClientError,
  );

describe("an API call's error answer", () => {
  it("gives the broker's registry code and message, with the status", async () => {
    const url = await answering(403, 'application/json', JSON.stringify({ error: 'ENTRY_FORBIDDEN', message: 'token does not grant app shop' }));
    const err = await failure(brokerText(url, '/api/whoami'));
    expect([err.code, err.message, err.httpStatus]).toEqual(['ENTRY_FORBIDDEN', 'token does not grant app shop', 403]);
  });

  it("names the status, not a proxy's JSON, when the body's error is no registry code", async () => {
    const url = await answering(502, 'application/json', JSON.stringify({ error: 'Bad Gateway', message: 'upstream connect error' }));
    const err = await failure(brokerText(url, '/api/whoami'));
    expect([err.code, err.message, err.httpStatus]).toEqual(['HTTP_502', 'broker answered HTTP 502 on /api/whoami', 502]);
  });

  it("names the status for a page that is not JSON", async () => {
    const url = await answering(404, 'text/html', '<h1>Not Found</h1>');
    const err = await failure(brokerText(url, '/api/version'));
    expect([err.code, err.message]).toEqual(['HTTP_404', 'broker answered HTTP 404 on /api/version']);
  });
});

describe('refusalFromBody', () => {
  it('takes only a registry code, and names the status when the message is missing or empty', () => {
    expect(refusalFromBody('{"error":"ENTRY_DRAINING","message":""}', 503)?.message).toBe('broker answered HTTP 503: ENTRY_DRAINING');
    expect(refusalFromBody('{"error":"ENTRY_DRAINING"}', 503)?.code).toBe('ENTRY_DRAINING');
    for (const text of ['', 'null', '"ENTRY_X"', '[1]', '{"error":"entry_forbidden"}', '{"error":42}', '{"error":"ENTRY_"}', '<html>']) expect(refusalFromBody(text, 400), text).toBeUndefined();
  });
});

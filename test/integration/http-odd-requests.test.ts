import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { rawHttp } from '../helpers/raw-http.js';

/** Requests no ordinary client sends, answered as every other refusal: JSON with the registry's code. */
describe('odd HTTP requests', () => {
  let broker: TestBroker;
  let port: number;

  beforeAll(async () => {
    broker = await startTestBroker();
    port = Number(new URL(broker.url).port);
  });
  afterAll(async () => {
    await broker?.stop();
  });

  const ask = (head: string | Buffer) => rawHttp(port, { head, answers: 1, timeoutMs: 5_000 });
  const refusal = (text: string) => {
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    return JSON.parse(body) as { error: string; message: string };
  };

  it('answers a WebSocket upgrade to a path that takes none with 404, its code and the request id', async () => {
    const upgrade = (path: string) =>
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
    for (const path of ['/api/whoami', '/healthz', '/', '/nowhere']) {
      const answer = await ask(upgrade(path));
      expect(answer.statuses, path).toEqual([404]);
      expect(answer.text.toLowerCase(), path).toContain('x-request-id:');
      expect(refusal(answer.text), path).toMatchObject({ error: 'ENTRY_NOT_FOUND' });
      expect(refusal(answer.text).message, path).toContain('/enter');
    }
  });
});

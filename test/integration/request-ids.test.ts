import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { WireClient } from '../helpers/wire-client.js';

describe('request ids in answers and logs', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await startTestBroker();
  });
  afterAll(() => b.stop());

  const lines = () => b.logs.map((l) => JSON.parse(l) as Record<string, unknown>);

  it('answers every HTTP request with x-request-id and logs one line carrying it', async () => {
    const res = await fetch(`${b.url}/api/whoami`, { headers: { authorization: `Bearer ${await b.mint()}` } });
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await new Promise((r) => setTimeout(r, 20));
    expect(lines().find((l) => l['msg'] === 'http' && l['request'] === id)).toMatchObject({ method: 'GET', path: '/api/whoami', status: 200 });
  });

  it('keeps a sane id given by a proxy, and replaces one that is not', async () => {
    const kept = await fetch(`${b.url}/healthz`, { headers: { 'x-request-id': 'lb-123.abc' } });
    expect(kept.headers.get('x-request-id')).toBe('lb-123.abc');
    const replaced = await fetch(`${b.url}/healthz`, { headers: { 'x-request-id': 'bad id\twith junk' } });
    expect(replaced.headers.get('x-request-id')).not.toContain('junk');
  });

  it('names the request in the log line of a refused upgrade', async () => {
    const c = await WireClient.connect(b.wsUrl, { 'access-token': 'nope', 'app-name': 'a', 'proc-name': 'b', 'instance-no': '1', 'x-request-id': 'upgrade-42' });
    await c.closed;
    expect(lines().find((l) => l['msg'] === 'upgrade refused' && l['request'] === 'upgrade-42')).toBeDefined();
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { WireClient } from '../helpers/wire-client.js';

describe('request ids in answers and logs', () => {
  let b: TestBroker;
  beforeAll(async () => {
    // Loopback is the proxy here: what it forwards is believed.
    b = await startTestBroker({ 'trusted-proxy': ['127.0.0.1/32', '::1/128'] });
  });
  afterAll(() => b.stop());

  const lines = () => b.logs.map((l) => JSON.parse(l) as Record<string, unknown>);

  it('answers every HTTP request with x-request-id and logs one line carrying it', async () => {
    const res = await fetch(`${b.url}/api/whoami`, { headers: { authorization: `Bearer ${await b.mint()}` } });
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await expect.poll(() => lines().find((l) => l['msg'] === 'http' && l['request'] === id)).toMatchObject({ method: 'GET', path: '/api/whoami', status: 200 });
  });

  it('logs a long path cut to its first 256 characters, as a refused request is', async () => {
    const long = `/api/${'a'.repeat(10_000)}`;
    const res = await fetch(`${b.url}${long}`);
    expect(res.status).toBe(404);
    const id = res.headers.get('x-request-id');
    await expect.poll(() => lines().find((l) => l['msg'] === 'http' && l['request'] === id)).toMatchObject({ path: `${long.slice(0, 256)}…`, status: 404 });
  });

  it('logs the client a trusted proxy names as the remote address, and the proxy as the peer', async () => {
    const res = await fetch(`${b.url}/healthz`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    const id = res.headers.get('x-request-id');
    const lineOf = (request: string | null) => lines().find((l) => l['msg'] === 'http' && l['request'] === request);
    await expect.poll(() => lineOf(id)).toMatchObject({ remote: '203.0.113.9', peer: '127.0.0.1' });
    const direct = (await fetch(`${b.url}/healthz`)).headers.get('x-request-id');
    await expect.poll(() => lineOf(direct)).toMatchObject({ remote: '127.0.0.1' });
    const line = lineOf(direct);
    expect(line).not.toHaveProperty('peer');
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

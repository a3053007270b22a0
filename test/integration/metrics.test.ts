import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_INDEX_TIMING } from '../../broker/docker/container-index.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { TestEngine } from '../helpers/engine.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import { WireClient } from '../helpers/wire-client.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A strict reading of the Prometheus text format (0.0.4): HELP and TYPE before a family's
 * samples, names and label names as the format allows, escaped label values, float values,
 * histogram series (_bucket with le, _sum, _count) only under a histogram family.
 */
function parsePrometheus(text: string): { types: Map<string, string>; samples: Sample[] } {
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: Sample[] = [];
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# HELP (\S+) (.*)$/.exec(line);
    if (m) {
      expect(m[1]).toMatch(NAME);
      helps.add(m[1]!);
      continue;
    }
    m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      expect(types.has(m[1]!), `TYPE twice for ${m[1]}`).toBe(false);
      types.set(m[1]!, m[2]!);
      continue;
    }
    expect(line.startsWith('#'), `unknown comment: ${line}`).toBe(false);
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    expect(m, `not a sample line: ${line}`).not.toBeNull();
    const [, name, rawLabels, rawValue] = m!;
    const labels: Record<string, string> = {};
    if (rawLabels) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
      let pos = 0;
      let lm: RegExpExecArray | null;
      while (pos < rawLabels.length && (lm = re.exec(rawLabels))) {
        labels[lm[1]!] = lm[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
        pos = re.lastIndex;
      }
      expect(pos, `bad labels in ${line}`).toBe(rawLabels.length);
    }
    const value = rawValue === '+Inf' ? Infinity : rawValue === '-Inf' ? -Infinity : Number(rawValue);
    // Prometheus parses floats as Go does: NaN in any case.
    expect(Number.isNaN(value) && !/^nan$/i.test(rawValue!), `bad value in ${line}`).toBe(false);
    const family = [name!, name!.replace(/_(bucket|sum|count)$/, '')].find((n) => types.has(n));
    expect(family, `sample without a TYPE: ${line}`).toBeDefined();
    if (family !== name) expect(['histogram', 'summary']).toContain(types.get(family!));
    if (name!.endsWith('_bucket') && types.get(family!) === 'histogram') expect(labels['le']).toBeDefined();
    expect(helps.has(family!), `no HELP for ${family}`).toBe(true);
    samples.push({ name: name!, labels, value });
  }
  return { types, samples };
}

describe('Prometheus metrics on --metrics-listen', () => {
  const containers = new TestContainers();
  const app = uniqueApp('mx');
  const target = { app, proc: 'web', instance: 1 };
  let b: TestBroker;

  beforeAll(async () => {
    await containers.entry(app, 'web', 1);
    b = await startTestBroker({ 'metrics-listen': '127.0.0.1:0' });
  });
  afterAll(async () => {
    await b?.stop();
    await containers.removeAll();
  });

  async function scrape(broker = b) {
    const res = await fetch(broker.broker.metricsUrl!);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const parsed = parsePrometheus(await res.text());
    const value = (name: string, labels: Record<string, string> = {}) =>
      parsed.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);
    return { ...parsed, value };
  }

  it('serves /metrics on its own listener only, and nothing of the API or the console', async () => {
    expect(b.broker.metricsUrl).not.toContain(new URL(b.url).port);
    expect((await fetch(b.broker.metricsUrl!.replace('/metrics', '/'))).status).toBe(404);
    expect((await fetch(b.broker.metricsUrl!.replace('/metrics', '/api/sessions'))).status).toBe(404);
    expect((await fetch(`${b.url}/metrics`)).status).toBe(404);
  });

  it("answers /healthz and /readyz there as the broker's listener does, for probes that have no client certificate", async () => {
    const there = (path: string) => b.broker.metricsUrl!.replace('/metrics', path);
    for (const path of ['/healthz', '/readyz', '/healthz?broker=someone-else']) {
      const [own, metrics] = await Promise.all([fetch(`${b.url}${path}`), fetch(there(path))]);
      expect(metrics.status, path).toBe(own.status);
      expect(await metrics.json(), path).toEqual(await own.json());
    }
    expect((await fetch(there('/readyz'))).status).toBe(200);
    expect((await fetch(there('/healthz'), { method: 'POST' })).status).toBe(405);
  });

  it('parses as Prometheus text and names every documented family with its type', async () => {
    const { types } = await scrape();
    const want: Record<string, string> = {
      entry_sessions_active: 'gauge',
      entry_sessions_total: 'counter',
      entry_session_duration_seconds: 'histogram',
      entry_session_bytes_total: 'counter',
      entry_session_refusals_total: 'counter',
      entry_auth_failures_total: 'counter',
      entry_docker_api_duration_seconds: 'histogram',
      entry_docker_api_errors_total: 'counter',
      entry_docker_host_up: 'gauge',
      entry_docker_indexed_containers: 'gauge',
      entry_websocket_buffered_bytes: 'gauge',
      entry_websocket_buffered_bytes_max: 'gauge',
    };
    for (const [name, type] of Object.entries(want)) expect(types.get(name), name).toBe(type);
    for (const name of types.keys()) {
      if (!name.startsWith('entry_')) continue;
      if (types.get(name) === 'counter') expect(name).toMatch(/_total$/);
      expect(name).not.toMatch(/_ms$|_milliseconds|_kb$/);
    }
  });

  it('moves as sessions open and close', async () => {
    const before = await scrape();
    expect(before.value('entry_docker_host_up', { host: 'local' })).toBe(1);
    const token = await b.mint({ apps: [app] });
    const s = await openCommand(b.wsUrl, token, target, ['sh', '-c', 'head -c 5000 /dev/zero; echo; read x; echo $x']);
    await s.waitFor(() => s.stdoutText().length >= 5001, 'the output');
    const during = await scrape();
    expect(during.value('entry_sessions_active')).toBe(before.value('entry_sessions_active') + 1);
    expect(during.value('entry_session_bytes_total', { direction: 'out' })).toBeGreaterThanOrEqual(before.value('entry_session_bytes_total', { direction: 'out' }) + 5001);
    expect(during.value('entry_docker_api_duration_seconds_count', { host: 'local', call: 'exec_create' })).toBeGreaterThan(before.value('entry_docker_api_duration_seconds_count', { host: 'local', call: 'exec_create' }));
    expect(during.value('entry_docker_api_duration_seconds_count', { host: 'local', call: 'exec_start' })).toBeGreaterThan(0);
    s.send(0, 'bye\n');
    await s.closed;
    const after = await scrape();
    expect(after.value('entry_sessions_active')).toBe(before.value('entry_sessions_active'));
    expect(after.value('entry_sessions_total', { outcome: 'exited' })).toBe(before.value('entry_sessions_total', { outcome: 'exited' }) + 1);
    expect(after.value('entry_session_duration_seconds_count')).toBe(before.value('entry_session_duration_seconds_count') + 1);
    expect(after.value('entry_session_bytes_total', { direction: 'in' })).toBeGreaterThanOrEqual(before.value('entry_session_bytes_total', { direction: 'in' }) + 4);
    expect(after.value('entry_docker_api_duration_seconds_count', { host: 'local', call: 'exec_inspect' })).toBeGreaterThan(0);
    expect(after.value('entry_docker_indexed_containers', { host: 'local' })).toBeGreaterThan(0);
  });

  it('counts refusals and authentication failures by reason', async () => {
    const before = await scrape();
    const bad = await openCommand(b.wsUrl, 'not-a-token', target, ['true']);
    await bad.closed;
    const other = await openCommand(b.wsUrl, await b.mint({ apps: ['someone-else'] }), target, ['true']);
    await other.closed;
    const missing = await openCommand(b.wsUrl, await b.mint({ apps: [app] }), { ...target, instance: 9 }, ['true']);
    await missing.closed;
    const forged = await WireClient.connect(`${b.wsUrl}?${new URLSearchParams({ app, proc: 'web', instance: '1', ticket: 'A'.repeat(43) })}`, {}, ['entry.v1']);
    await forged.closed;
    // API calls the policy refuses count as sessions refused by it do.
    const ticketElsewhere = await fetch(`${b.url}/api/tickets`, { method: 'POST', headers: { authorization: `Bearer ${await b.mint({ apps: ['someone-else'] })}`, 'content-type': 'application/json' }, body: JSON.stringify(target) });
    expect(ticketElsewhere.status).toBe(403);
    const sessionsAsUser = await fetch(`${b.url}/api/sessions`, { headers: { authorization: `Bearer ${await b.mint({ apps: [app] })}` } });
    expect(sessionsAsUser.status).toBe(403);
    const after = await scrape();
    expect(after.value('entry_auth_failures_total', { reason: 'bad_ticket' })).toBe(before.value('entry_auth_failures_total', { reason: 'bad_ticket' }) + 1);
    expect(after.value('entry_auth_failures_total', { reason: 'bad_token' })).toBe(before.value('entry_auth_failures_total', { reason: 'bad_token' }) + 1);
    expect(after.value('entry_auth_failures_total', { reason: 'forbidden' })).toBe(before.value('entry_auth_failures_total', { reason: 'forbidden' }) + 2);
    expect(after.value('entry_auth_failures_total', { reason: 'not_admin' })).toBe(before.value('entry_auth_failures_total', { reason: 'not_admin' }) + 1);
    expect(after.value('entry_session_refusals_total', { code: 'not_found' })).toBe(before.value('entry_session_refusals_total', { code: 'not_found' }) + 1);
  });

  it('samples WebSocket send buffers while a client is not reading', async () => {
    const s = await openCommand(b.wsUrl, await b.mint({ apps: [app] }), target, ['sh', '-c', 'head -c 20000000 /dev/zero']);
    (s.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const sampled = await eventually(async () => (await scrape()).value('entry_websocket_buffered_bytes') > 64 * 1024, 'buffered bytes to show', 5_000);
    const m = await scrape();
    expect(m.value('entry_websocket_buffered_bytes_max')).toBeGreaterThan(0);
    expect(m.value('entry_websocket_buffered_bytes_max')).toBeLessThanOrEqual(m.value('entry_websocket_buffered_bytes'));
    console.log(`metrics: a stalled client showed ${m.value('entry_websocket_buffered_bytes')} buffered bytes after ${sampled} ms`);
    s.ws.terminate();
    await eventually(async () => (await scrape()).value('entry_sessions_active') === 0, 'the session to end');
  });

  it('reports a Docker host down when its engine stops', async () => {
    const engine = new TestEngine();
    await engine.start();
    const fb = await startTestBroker({ 'metrics-listen': '127.0.0.1:0', 'docker-host': [`one=${engine.host}`] });
    try {
      expect((await scrape(fb)).value('entry_docker_host_up', { host: 'one' })).toBe(1);
      expect((await scrape(fb)).value('entry_docker_api_duration_seconds_count', { host: 'one', call: 'container_list' })).toBeGreaterThan(0);
      await engine.stop();
      // Well under the ping interval, with room for a loaded machine: the drop comes from the
      // engine's event stream ending, not from the next ping.
      await eventually(async () => (await scrape(fb)).value('entry_docker_host_up', { host: 'one' }) === 0, 'host up to drop', DEFAULT_INDEX_TIMING.pingIntervalMs / 2);
      expect((await fetch(`${fb.url}/readyz`)).status).toBe(503);
    } finally {
      await fb.stop();
      await engine.destroy();
    }
  }, 60_000);
});

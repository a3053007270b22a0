import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient } from '../../broker/kubernetes/kube-client.js';
import { PodIndex } from '../../broker/kubernetes/pod-index.js';
import { podRecord } from '../../broker/kubernetes/pod.js';
import { createLogger } from '../../broker/log.js';
import { writeKubeconfig } from '../helpers/kubeconfig.js';

const podObject = (name: string, rv: number, extra: Record<string, unknown> = {}) => ({
  metadata: { uid: `uid-${name}`, namespace: 'ns', name, resourceVersion: String(rv), labels: { 'app.kubernetes.io/name': 'shop', 'app.kubernetes.io/component': 'api' }, ...extra },
  spec: { containers: [{ name: 'main', image: 'img' }] },
  status: { phase: 'Running' },
});

/**
 * A stand-in apiserver for list + watch on one namespace: the test decides what the listing
 * holds and pushes watch events, ends watches in order or breaks them.
 */
function fakeApiserver() {
  const state = { pods: new Map<string, object>(), rv: 10, lists: 0, watches: [] as Array<{ res: ServerResponse; from: string }> };
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/version') return void res.end('{"gitVersion":"v1.20.2"}');
    if (url.pathname !== '/api/v1/namespaces/ns/pods') return void res.writeHead(404).end('{}');
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      state.watches.push({ res, from: url.searchParams.get('resourceVersion') ?? '' });
      return;
    }
    state.lists++;
    res.end(JSON.stringify({ kind: 'PodList', metadata: { resourceVersion: String(state.rv) }, items: [...state.pods.values()] }));
  });
  const event = (type: string, object: object) => {
    for (const w of state.watches) if (!w.res.writableEnded) w.res.write(`${JSON.stringify({ type, object })}\n`);
  };
  return { server, state, event };
}

const until = async (check: () => boolean, ms = 3_000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('the pod index (list + watch)', () => {
  const fake = fakeApiserver();
  let dir: string;
  let index: PodIndex;
  /** Every change of the index's state, up or down. */
  const changes: boolean[] = [];
  const target = (instance: string) => ({ app: 'shop', proc: 'api', instance });

  beforeAll(async () => {
    await new Promise<void>((r) => fake.server.listen(0, '127.0.0.1', r));
    dir = mkdtempSync(join(tmpdir(), 'entry-kube-index-'));
    const file = join(dir, 'kubeconfig');
    const port = (fake.server.address() as { port: number }).port;
    writeKubeconfig(file, { cluster: { name: 'fake', server: `http://127.0.0.1:${port}`, insecure: true }, token: 't', contexts: [{ name: 'c' }] });
    fake.state.pods.set('a', podObject('api-a', 5));
    index = new PodIndex(KubeClient.load({ kubeconfig: file }), ['ns'], createLogger('silent'), { backoffInitialMs: 20, backoffMaxMs: 50, pingIntervalMs: 60_000 }, (up) => changes.push(up));
    await index.start();
  });

  afterAll(() => {
    index.stop();
    for (const w of fake.state.watches) w.res.destroy();
    fake.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists, then follows the watch from the listing\'s resourceVersion', async () => {
    expect(index.up).toBe(true);
    expect(index.lookup(target('api-a')).map((p) => p.name)).toEqual(['api-a']);
    expect(fake.state.watches.at(-1)!.from).toBe('10');
    fake.event('ADDED', podObject('api-b', 11));
    await until(() => index.lookup(target('api-b')).length === 1);
    fake.event('MODIFIED', podObject('api-b', 12, { deletionTimestamp: '2026-01-01T00:00:00Z' }));
    await until(() => index.lookup(target('api-b'))[0]?.terminating === true);
    fake.event('DELETED', podObject('api-a', 13));
    await until(() => index.lookup(target('api-a')).length === 0);
  });

  it('resumes a watch the apiserver ended in order from the last version, without listing again', async () => {
    const lists = fake.state.lists;
    const watches = fake.state.watches.length;
    fake.state.watches.at(-1)!.res.end();
    await until(() => fake.state.watches.length === watches + 1);
    expect(fake.state.watches.at(-1)!.from).toBe('13');
    expect(fake.state.lists).toBe(lists);
    expect(index.up).toBe(true);
  });

  it('lists again after 410 Gone, serving what it holds meanwhile, and after a broken connection, being down meanwhile', async () => {
    let lists = fake.state.lists;
    fake.state.rv = 20;
    fake.state.pods.clear();
    fake.state.pods.set('c', podObject('api-c', 19));
    const seen = changes.length;
    fake.event('ERROR', { kind: 'Status', status: 'Failure', code: 410, reason: 'Expired', message: 'too old resource version' });
    await until(() => fake.state.lists === lists + 1 && index.up);
    await until(() => fake.state.watches.at(-1)!.from === '20');
    // Never down: only the watch's version was stale.
    expect(changes.slice(seen)).toEqual([]);
    // The listing replaced what the index held.
    expect(index.lookup(target('api-b'))).toEqual([]);
    expect(index.lookup(target('api-c')).map((p) => p.name)).toEqual(['api-c']);
    expect(fake.state.watches.at(-1)!.from).toBe('20');

    lists = fake.state.lists;
    fake.state.watches.at(-1)!.res.destroy();
    await until(() => !index.up || fake.state.lists > lists);
    await until(() => fake.state.lists === lists + 1 && index.up);
    expect(changes.slice(seen)).toEqual([false, true]);
    expect(index.resyncs).toBeGreaterThanOrEqual(3);
  });

  it('puts nothing in from a direct listing that a relist overtook', async () => {
    await until(() => index.up);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const ghost = podRecord(podObject('api-ghost', 30))!;
    const confirmed = index.confirm(async () => (await held, [ghost]));
    // A 410 while the listing is on its way: the pod may have been deleted in what was lost.
    const resyncs = index.resyncs;
    fake.event('ERROR', { kind: 'Status', status: 'Failure', code: 410, reason: 'Expired', message: 'too old resource version' });
    // The relist's answer is in (not merely asked for: the scope stays up through a 410's relist).
    await until(() => index.resyncs === resyncs + 1 && index.up);
    release();
    expect(await confirmed).toEqual([ghost]);
    expect(index.lookup(target('api-ghost'))).toEqual([]);
  });
});

describe('the pod index when a listing stalls', () => {
  // Headers and half a PodList, then silence: a partition, or an apiserver too busy to go on.
  // A watch is accepted and then silent for good (never ended in order, as a dead link looks);
  // `silentWatch` of them are not even answered.
  const state = { stall: 0, silentWatch: 0, lists: 0, stalled: [] as ServerResponse[], watches: [] as ServerResponse[] };
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/version') return void res.end('{"gitVersion":"v1.20.2"}');
    if (url.searchParams.get('watch') === 'true') {
      state.watches.push(res);
      if (state.silentWatch > 0) {
        state.silentWatch--;
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      return;
    }
    state.lists++;
    const body = JSON.stringify({ kind: 'PodList', metadata: { resourceVersion: '7' }, items: [podObject('api-a', 5)] });
    if (state.stall > 0) {
      state.stall--;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(body.slice(0, 40));
      state.stalled.push(res);
      return;
    }
    res.end(body);
  });
  let dir: string;
  let client: KubeClient;

  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    dir = mkdtempSync(join(tmpdir(), 'entry-kube-stall-'));
    const file = join(dir, 'kubeconfig');
    writeKubeconfig(file, { cluster: { name: 'fake', server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, insecure: true }, token: 't', contexts: [{ name: 'c' }] });
    client = KubeClient.load({ kubeconfig: file });
  });

  afterAll(() => {
    for (const r of [...state.stalled, ...state.watches]) r.destroy();
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('bounds a JSON answer as a whole, body included', async () => {
    state.stall = 1;
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('still waiting after 2 s')), 2_000)));
    await expect(Promise.race([client.getJson('/api/v1/namespaces/ns/pods', 'pod_list', { timeoutMs: 200 }), stuck])).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    clearTimeout(timer);
  });

  it('fails a stalled relist, says so, and retries it on the schedule until it comes up', async () => {
    state.stall = 2;
    const lists = state.lists;
    const stalled = state.stalled.length;
    const lines: string[] = [];
    const index = new PodIndex(client, ['ns'], createLogger('warn', (l) => lines.push(l)), { requestTimeoutMs: 1_000, backoffInitialMs: 20, backoffMaxMs: 50, pingIntervalMs: 60_000 });
    try {
      void index.start();
      await until(() => index.up, 15_000);
      // Two lists stalled and timed out; the next one (or, on a loaded machine, a later one) came up.
      expect(state.stalled.length).toBe(stalled + 2);
      expect(state.lists).toBeGreaterThanOrEqual(lists + 3);
      expect(index.lookup({ app: 'shop', proc: 'api', instance: 'api-a' }).map((p) => p.name)).toEqual(['api-a']);
      const warned = lines.map((l) => JSON.parse(l) as { msg: string; reason?: string }).find((l) => l.msg === 'kubernetes cluster unreachable');
      expect(warned?.reason).toBe('ETIMEDOUT');
    } finally {
      index.stop();
    }
  });

  it('gives up a watch whose open is never answered, and lists and watches again', async () => {
    state.silentWatch = 1;
    const lists = state.lists;
    const lines: string[] = [];
    const index = new PodIndex(client, ['ns'], createLogger('warn', (l) => lines.push(l)), { requestTimeoutMs: 500, backoffInitialMs: 20, backoffMaxMs: 50, pingIntervalMs: 60_000 });
    try {
      void index.start();
      await until(() => index.up, 15_000);
      expect(state.silentWatch).toBe(0);
      expect(state.lists).toBeGreaterThanOrEqual(lists + 2);
      const warned = lines.map((l) => JSON.parse(l) as { msg: string; reason?: string }).find((l) => l.msg === 'kubernetes cluster unreachable');
      expect(warned?.reason).toBe('ETIMEDOUT');
    } finally {
      index.stop();
    }
  });

  it('takes a watch the apiserver never ends for a dead link once it is overdue, and lists and watches again', async () => {
    const lines: string[] = [];
    const index = new PodIndex(client, ['ns'], createLogger('warn', (l) => lines.push(l)), { requestTimeoutMs: 5_000, backoffInitialMs: 20, backoffMaxMs: 50, pingIntervalMs: 60_000, watchSeconds: 1, watchOverdueMs: 300 });
    try {
      await index.start();
      const lists = state.lists;
      const watches = state.watches.length;
      // Due to end within 1.1 s; overdue 0.3 s later: down, then listed and watched anew.
      await until(() => state.lists > lists && state.watches.length > watches && index.up, 15_000);
      const down = lines.map((l) => JSON.parse(l) as { msg: string; reason?: string }).find((l) => l.msg === 'kubernetes cluster down');
      expect(down?.reason).toMatch(/^watch: not ended by the apiserver 0\.3 s after its 1 s: the link is taken for dead$/);
    } finally {
      index.stop();
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisClient } from '../../broker/store/redis-connection.js';
import { RedisStore } from '../../broker/store/redis-store.js';
import { type BrokerProcess, makeSigningKey, startBrokerProcess } from '../helpers/broker-process.js';
import { runCli } from '../helpers/cli.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { TestNginx } from '../helpers/nginx.js';
import { TestRedis } from '../helpers/redis.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import { WireClient } from '../helpers/wire-client.js';

const SESSION_TTL_MS = 1500;

describe('many brokers behind one address, sharing Redis', () => {
  const containers = new TestContainers();
  const redis = new TestRedis();
  const nginx = new TestNginx();
  const app = uniqueApp();
  const key = makeSigningKey();
  let a: BrokerProcess;
  let b: BrokerProcess;
  let containerId: string;
  const target = { app, proc: 'web', instance: 1 };

  const flags = () => ['--redis-url', redis.url, '--session-ttl', String(SESSION_TTL_MS), '--max-user-sessions', '2', '--kill-grace', '300'];

  beforeAll(async () => {
    await redis.start();
    containerId = await containers.entry(app, 'web', 1);
    [a, b] = await Promise.all([startBrokerProcess(flags(), {}, key), startBrokerProcess(flags(), {}, key)]);
    await nginx.start([a.url, b.url]);
  });
  afterAll(async () => {
    await nginx.stop();
    await Promise.all([a?.stop(), b?.stop()]);
    await redis.stop();
    await containers.removeAll();
  });

  const api = (base: string, token: string, path: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });

  it('lists a session opened on A through B, and B kills it on A with a reason', async () => {
    const admin = await a.mint({ roles: ['entry-admin'] }, 'root-admin');
    const user = await a.mint({ apps: [app] }, 'kim');
    const s = await openCommand(a.wsUrl, user, target, ['sh', '-c', 'echo up; sleep 1010']);
    await s.waitFor(() => s.stdoutText() === 'up\n', 'the session');
    const list = (await (await api(b.url, admin, '/api/sessions')).json()) as { sessions: Array<{ id: string; user: string; app: string; broker: string; command: string[] }> };
    const mine = list.sessions.find((x) => x.user === 'kim' && x.app === app);
    expect(mine).toBeDefined();
    expect(mine!.broker).toBe(a.id);
    expect(mine!.command).toEqual(['sh', '-c', 'echo up; sleep 1010']);
    const t0 = performance.now();
    const res = await api(b.url, admin, `/api/sessions/${mine!.id}`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    await s.closed;
    const killMs = performance.now() - t0;
    console.log(`multi-broker: a kill issued on B ended the session on A in ${killMs.toFixed(1)} ms`);
    expect(s.closeMessage()!.code).toBe('ENTRY_KILLED');
    expect(new TextDecoder().decode(s.closeMessage()!.content)).toContain('by root-admin');
    await eventually(async () => (await containerProcesses(containerId)).every((p) => !p.includes('sleep 1010')), 'the killed process to be gone');
    const forbidden = await api(b.url, user, '/api/sessions');
    expect(forbidden.status).toBe(403);
  });

  it("answers 503, not 202, to a kill no broker hears (the session's broker gone, its record not expired yet)", async () => {
    const admin = await b.mint({ roles: ['entry-admin'] }, 'root-admin');
    const store = new RedisStore(createRedisClient({ url: redis.url, sentinels: [], sentinelName: undefined, cluster: false }));
    await store.connect();
    const id = 'gone-broker-session';
    try {
      // As a broker killed -9 leaves it until the TTL: listed, with no one subscribed for it.
      await store.putSession({ id, user: 'kim', source: '127.0.0.1', app, proc: 'web', instance: '1', container: containerId, dockerHost: 'local', broker: 'gone-broker', startedAt: new Date().toISOString(), bytesIn: 0, bytesOut: 0, command: null, tty: true }, 60_000);
      const res = await api(b.url, admin, `/api/sessions/${id}`, { method: 'DELETE' });
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: string; message: string };
      expect(body.error).toBe('ENTRY_STORE_UNAVAILABLE');
      expect(body.message).toContain(`the broker holding session ${id} (gone-broker) did not hear the kill`);
      // A session that is not listed at all is another answer.
      expect((await api(b.url, admin, '/api/sessions/no-such-session', { method: 'DELETE' })).status).toBe(404);
    } finally {
      await store.removeSession(id);
      await store.close();
    }
  });

  it('ends a session on A when its token is revoked through B', async () => {
    const admin = await a.mint({ roles: ['entry-admin'] }, 'root-admin');
    const s = await openCommand(a.wsUrl, await a.mint({ apps: [app] }, 'rita'), target, ['sh', '-c', 'echo up; sleep 1013']);
    await s.waitFor(() => s.stdoutText() === 'up\n', 'the session');
    expect((await api(b.url, admin, '/api/revocations', { method: 'POST', body: JSON.stringify({ user: 'rita' }) })).status).toBe(204);
    expect((await s.closed).code).toBe(4401);
    expect(s.closeMessage()).toMatchObject({ code: 'ENTRY_TOKEN_REVOKED' });
    await eventually(async () => (await containerProcesses(containerId)).every((p) => !p.includes('sleep 1013')), 'the process to be gone');
  });

  it('lists and kills sessions from the CLI: enter sessions, enter kill', async () => {
    const admin = await a.mint({ roles: ['entry-admin'] }, 'cli-admin');
    const s = await openCommand(a.wsUrl, await a.mint({ apps: [app] }, 'cli-user'), target, ['sh', '-c', 'echo up; sleep 1014']);
    await s.waitFor(() => s.stdoutText() === 'up\n', 'the session');
    const env = { ENTRY_BROKER: b.url, ENTRY_TOKEN: admin, ENTRY_CONFIG_DIR: '/nonexistent' };
    const listed = await runCli(['sessions', '--json'], env);
    expect(listed.status).toBe(0);
    const row = (JSON.parse(listed.stdout.toString()) as Array<{ id: string; user: string }>).find((r) => r.user === 'cli-user');
    expect(row).toBeDefined();
    const table = await runCli(['sessions'], env);
    expect(table.stdout.toString()).toMatch(new RegExp(`${row!.id}\\s+cli-user\\s+${app}/web/1`));
    const killed = await runCli(['kill', row!.id], env);
    expect(killed.status).toBe(0);
    await s.closed;
    expect(new TextDecoder().decode(s.closeMessage()!.content)).toContain('by cli-admin');
    const notAdmin = await runCli(['sessions'], { ...env, ENTRY_TOKEN: await a.mint({ apps: [app] }, 'cli-user') });
    expect(notAdmin.status).toBe(255);
    expect(notAdmin.stderr.toString()).toMatch(/needs the admin role/);
  });

  it('lets an admin on B watch a session running on A', async () => {
    const admin = await a.mint({ roles: ['entry-admin'] }, 'watcher-admin');
    const s = await openCommand(a.wsUrl, await a.mint({ apps: [app] }, 'watched-user'), target, ['sh', '-c', 'while read x; do echo "got $x"; done']);
    await eventually(async () => {
      const res = await api(b.url, admin, '/api/sessions');
      return ((await res.json()) as { sessions: Array<{ user: string }> }).sessions.some((x) => x.user === 'watched-user');
    }, 'the session to be listed');
    const id = ((await (await api(b.url, admin, '/api/sessions')).json()) as { sessions: Array<{ id: string; user: string }> }).sessions.find((x) => x.user === 'watched-user')!.id;
    const watcher = await WireClient.connect(`${b.wsUrl.replace('/enter', '/watch')}?session=${id}`, { 'access-token': admin });
    // The lease reaches A over Redis before the output flows: retry the input until seen.
    await eventually(async () => {
      s.send(0, 'hello\n');
      await new Promise((r) => setTimeout(r, 100));
      return watcher.stdoutText().includes('got hello');
    }, 'output from A at the watcher on B');
    s.ws.close();
    await watcher.closed;
    expect(new TextDecoder().decode(watcher.closeMessage()!.content)).toMatch(/the watched session ended/);
  });

  it('holds the per-user cap across both brokers', async () => {
    const token = await a.mint({ apps: [app] }, 'capped');
    const s1 = await openCommand(a.wsUrl, token, target, ['sh', '-c', 'echo 1; sleep 1011']);
    const s2 = await openCommand(b.wsUrl, token, target, ['sh', '-c', 'echo 2; sleep 1011']);
    await s1.waitFor(() => s1.stdoutText() === '1\n', 'first');
    await s2.waitFor(() => s2.stdoutText() === '2\n', 'second');
    for (const base of [a.wsUrl, b.wsUrl]) {
      const third = await openCommand(base, token, target, ['true']);
      const closed = await third.closed;
      expect(third.closeMessage()!.code).toBe('ENTRY_USER_SESSION_LIMIT');
      expect(closed.code).toBe(4429);
    }
    s1.ws.close();
    await s1.closed;
    // A frees the slot as it ends the session, which its close event starts in another process
    // than this one: B may be asked a moment before. Freed within a few seconds, or never.
    const deadline = Date.now() + 5_000;
    let again = await openCommand(b.wsUrl, token, target, ['echo', 'room again']);
    await again.closed;
    while (again.closeMessage()?.code === 'ENTRY_USER_SESSION_LIMIT' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      again = await openCommand(b.wsUrl, token, target, ['echo', 'room again']);
      await again.closed;
    }
    expect(again.stdoutText()).toBe('room again\n');
    s2.ws.close();
  });

  it('honours a ticket minted on A once on B, and never again anywhere', async () => {
    const token = await a.mint({ apps: [app] }, 'browser-user');
    const res = await api(a.url, token, '/api/tickets', { method: 'POST', body: JSON.stringify(target) });
    const { ticket } = (await res.json()) as { ticket: string };
    const q = new URLSearchParams({ app, proc: 'web', instance: '1', ticket });
    const first = await WireClient.connect(`${b.wsUrl}?${q}`, {}, ['entry.v1']);
    first.ws.send(Buffer.from([0x08, 0x03, 0x12, 0x06, 0x0a, 0x04, 0x74, 0x72, 0x75, 0x65])); // START argv ["true"]
    await first.closed;
    expect(first.messages.some((m) => m.msgType === 4)).toBe(true);
    for (const base of [a.wsUrl, b.wsUrl]) {
      const replay = await WireClient.connect(`${base}?${q}`, {}, ['entry.v1']);
      await replay.closed;
      expect(replay.closeMessage()!.code).toBe('ENTRY_BAD_TOKEN');
    }
  });

  it('serves through nginx, and keeps serving when A is killed -9; A’s sessions leave the registry within the TTL', async () => {
    const admin = await a.mint({ roles: ['entry-admin'] }, 'root-admin');
    const token = await a.mint({ apps: [app] }, 'lb-user');
    const viaLb = await openCommand(`${nginx.url.replace('http', 'ws')}/enter`, token, target, ['echo', 'through nginx']);
    await viaLb.closed;
    expect(viaLb.stdoutText()).toBe('through nginx\n');

    const onA = await openCommand(a.wsUrl, token, target, ['sh', '-c', 'echo up; sleep 1012']);
    await onA.waitFor(() => onA.stdoutText() === 'up\n', 'a session on A');
    const listed = async () => ((await (await api(b.url, admin, '/api/sessions')).json()) as { sessions: Array<{ broker: string; user: string }> }).sessions.filter((s) => s.broker === a.id && s.user === 'lb-user').length;
    expect(await listed()).toBe(1);
    const t0 = Date.now();
    a.child.kill('SIGKILL');
    await a.exited;
    await eventually(async () => (await listed()) === 0, 'A’s sessions to expire', SESSION_TTL_MS * 3);
    console.log(`multi-broker: a dead broker's sessions left the registry ${Date.now() - t0} ms after kill -9 (TTL ${SESSION_TTL_MS} ms)`);
    for (let i = 0; i < 4; i++) {
      const c = await openCommand(`${nginx.url.replace('http', 'ws')}/enter`, token, target, ['echo', `still ${i}`]);
      await c.closed;
      expect(c.stdoutText()).toBe(`still ${i}\n`);
    }
    onA.ws.terminate();
  });

  it('rides out a Redis outage: live sessions go on, new ones fail closed with a reason, all recovers', async () => {
    const token = await b.mint({ apps: [app] }, 'outage-user');
    const live = await openCommand(b.wsUrl, token, target, ['cat']);
    live.send(0, 'before\n');
    await live.waitFor(() => live.stdoutText() === 'before\n', 'echo before the outage');

    await redis.stop();
    await eventually(async () => (await fetch(`${b.url}/readyz`)).status === 503, '/readyz to say not ready');
    const body = (await (await fetch(`${b.url}/readyz`)).json()) as { store: boolean };
    expect(body.store).toBe(false);
    live.send(0, 'during\n');
    await live.waitFor(() => live.stdoutText() === 'before\nduring\n', 'echo during the outage');
    const refused = await openCommand(b.wsUrl, token, target, ['true']);
    await refused.closed;
    expect(refused.closeMessage()!.code).toBe('ENTRY_STORE_UNAVAILABLE');
    expect((await fetch(`${b.url}/healthz`)).status).toBe(200);

    await redis.start();
    await eventually(async () => (await fetch(`${b.url}/readyz`)).status === 200, '/readyz to recover', 15_000);
    const after = await openCommand(b.wsUrl, token, target, ['echo', 'recovered']);
    await after.closed;
    expect(after.stdoutText()).toBe('recovered\n');
    live.send(0, 'after\n');
    await live.waitFor(() => live.stdoutText().endsWith('after\n'), 'echo after the outage');
    live.ws.close();
  });

  it('costs the session registry under 1 KiB of Redis per open session (a thousand sessions in 1 MiB), and the ledger as much again at most', async () => {
    const SESSIONS = 8;
    const PER_SESSION_LIMIT = 1024;
    const client = redis.client();
    // What the broker keeps per open session: the record, its entry in the expiry index, and
    // the user's slots. The audit stream is left out: it is capped by --audit-max-events
    // whatever the number of open sessions. Keys of earlier sessions can only expire meanwhile,
    // which makes the growth look smaller, never larger.
    // The session ledger (and the brokers' alive marks) apart: one entry per session, beside the registry.
    const isLedger = (k: string) => /^\{entry\}:(ledger|alive)/.test(k);
    const usage = async (ledger = false) => {
      const keys = (await client.keys('{entry}:*')).filter((k) => k !== '{entry}:audit' && isLedger(k) === ledger);
      const sizes = await Promise.all(keys.map(async (k) => Number(await client.call('MEMORY', 'USAGE', k, 'SAMPLES', '0'))));
      return sizes.reduce((x, y) => x + y, 0);
    };
    const open: WireClient[] = [];
    try {
      const before = await usage();
      const ledgerBefore = await usage(true);
      // One session per user: each also brings a slot set of its own, the dearer case.
      for (let i = 0; i < SESSIONS; i++) {
        const s = await openCommand(b.wsUrl, await b.mint({ apps: [app] }, `mem-user-${i}`), target, ['sh', '-c', 'echo up; sleep 1013']);
        open.push(s);
        await s.waitFor(() => s.stdoutText() === 'up\n', `session ${i}`);
      }
      const keys = await client.keys('{entry}:session:*');
      const values = await Promise.all(keys.map((k) => client.get(k)));
      expect(values.filter((v) => v?.includes('"user":"mem-user-')).length).toBe(SESSIONS);
      const perSession = ((await usage()) - before) / SESSIONS;
      const ledgerPerSession = ((await usage(true)) - ledgerBefore) / SESSIONS;
      console.log(`multi-broker: Redis memory per open session: ${perSession.toFixed(0)} bytes (record, expiry index entry, user slot set), and ${ledgerPerSession.toFixed(0)} bytes in the ledger`);
      expect(perSession).toBeGreaterThan(0);
      expect(perSession).toBeLessThan(PER_SESSION_LIMIT);
      expect(ledgerPerSession).toBeGreaterThan(0);
      expect(ledgerPerSession).toBeLessThan(PER_SESSION_LIMIT);
    } finally {
      client.disconnect();
      for (const s of open) s.ws.close();
    }
  });
});

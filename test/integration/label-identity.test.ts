import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResponseType } from '../../proto/codec.js';
import { Backends } from '../../broker/backend/backends.js';
import { DockerBackend } from '../../broker/docker/docker-backend.js';
import { connectHosts } from '../../broker/docker/hosts.js';
import { EntryError } from '../../broker/errors.js';
import { createLogger } from '../../broker/log.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { docker, execCreateCount, TestContainers, uniqueApp } from '../helpers/containers.js';
import { WireClient } from '../helpers/wire-client.js';

const compose = (project: string, service: string, n: number | string) => ({
  'com.docker.compose.project': project,
  'com.docker.compose.service': service,
  'com.docker.compose.container-number': String(n),
});

/**
 * A container is reachable under one name only: its `entry.*` labels when it has them, its
 * Compose labels otherwise. The shipped deploy/compose.yaml labels the broker `entry.app=entry`
 * (denied by default), and Compose adds `deploy/broker/1`: that alias must not exist.
 */
describe('one name per container', () => {
  const containers = new TestContainers();
  // Compose project names as `docker compose` run from some folder would give them.
  const project = uniqueApp('deploy');
  const own = uniqueApp('own');
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    // Labelled like the shipped broker: entry.app=entry plus what Compose adds.
    ids['broker'] = await containers.start({ labels: { 'entry.app': 'entry', 'entry.proc': 'broker', 'entry.instance': '1', ...compose(project, 'broker', 1) } });
    // An app of its own inside a Compose project: known by its entry name only.
    ids['own'] = await containers.start({ labels: { 'entry.app': own, 'entry.proc': 'api', 'entry.instance': '1', ...compose(project, 'api', 1) } });
    // Only entry.app: the rest of the name comes from Compose, the app does not.
    ids['partial'] = await containers.start({ labels: { 'entry.app': own, ...compose(project, 'jobs', 3) } });
    // Compose only: its project is its app.
    ids['plain'] = await containers.start({ labels: compose(project, 'web', 1) });
  });
  afterAll(() => containers.removeAll());

  for (const indexed of [false, true]) {
    describe(indexed ? 'from the index' : 'by listing', () => {
      const hosts = connectHosts([{ name: 'local', url: 'unix:///var/run/docker.sock' }], 'auto', docker);
      const backend = new DockerBackend(hosts, createLogger('silent'), { indexed });
      const resolver = new Backends([backend]);
      beforeAll(() => backend.start());
      afterAll(() => backend.stop());

      async function failure(app: string, proc: string, instance = '1'): Promise<EntryError> {
        try {
          const c = await resolver.resolve({ app, proc, instance });
          throw new Error(`resolved ${app}/${proc}/${instance} to ${c.name}`);
        } catch (err) {
          if (!(err instanceof EntryError)) throw err;
          return err;
        }
      }

      it('has no Compose alias for a container with entry.* labels', async () => {
        expect((await failure(project, 'broker')).code).toBe('ENTRY_NOT_FOUND');
        expect((await failure(project, 'api')).code).toBe('ENTRY_NOT_FOUND');
        expect((await failure(project, 'jobs', '3')).code).toBe('ENTRY_NOT_FOUND');
      });

      it('resolves such a container by its entry name, and says which app it is', async () => {
        const c = await resolver.resolve({ app: own, proc: 'api', instance: '1' });
        expect(c.id).toBe(ids['own']);
        expect(c.app).toBe(own);
        const p = await resolver.resolve({ app: own, proc: 'jobs', instance: '3' });
        expect(p.id).toBe(ids['partial']);
      });

      it('still resolves a Compose-only container by its project', async () => {
        const c = await resolver.resolve({ app: project, proc: 'web', instance: '1' });
        expect(c.id).toBe(ids['plain']);
        expect(c.app).toBe(project);
      });

      it('lists each container once, under its one name', async () => {
        const mine = (await backend.list()).filter((t) => [project, own].includes(t.app));
        expect(mine.map((t) => `${t.app}/${t.proc}/${t.instance}`).sort()).toEqual([`${own}/api/1`, `${own}/jobs/3`, `${project}/web/1`].sort());
        const name = (await docker.getContainer(ids['broker']!).inspect()).Name.replace(/^\//, '');
        const broker = (await backend.list()).filter((t) => t.name === name);
        expect(broker.map((t) => `${t.app}/${t.proc}/${t.instance}`)).toEqual(['entry/broker/1']);
      });
    });
  }

  describe('through the broker', () => {
    let b: TestBroker;
    const denied = uniqueApp('secret-');
    let deniedId: string;

    beforeAll(async () => {
      b = await startTestBroker({ 'deny-apps': ['entry', 'secret-*'] });
      // The other direction: Compose labels only, and the project's name is a denied app.
      deniedId = await containers.start({ labels: compose(denied, 'db', 1) });
    });
    afterAll(() => b.stop());

    async function refused(token: string, app: string, proc: string) {
      const c = await WireClient.connect(b.wsUrl, { 'access-token': token, 'app-name': app, 'proc-name': proc, 'instance-no': '1' });
      const timer = setTimeout(() => c.ws.terminate(), 10_000);
      const closed = await c.closed;
      clearTimeout(timer);
      expect(c.closeMessage(), `${app}/${proc} was entered, not refused`).toBeDefined();
      expect(c.messages.filter((m) => m.msgType === ResponseType.STDOUT)).toHaveLength(0);
      return { text: new TextDecoder().decode(c.closeMessage()!.content), code: closed.code };
    }

    it('gives no shell in the broker-like container to whoever holds the project or every app', async () => {
      const since = Date.now();
      for (const claims of [{ apps: [project] }, { apps: ['*'] }, { roles: ['entry-admin'] }]) {
        const r = await refused(await b.mint(claims), project, 'broker');
        expect(r.code, JSON.stringify(claims)).toBeGreaterThanOrEqual(4400);
        expect(r.text).not.toMatch(/exited/);
      }
      const r = await refused(await b.mint({ roles: ['entry-admin'] }), 'entry', 'broker');
      expect(r.text).toMatch(/never enterable/);
      expect(await execCreateCount(ids['broker']!, since)).toBe(0);
    });

    it('refuses a Compose-only container whose project is a denied app', async () => {
      const since = Date.now();
      const r = await refused(await b.mint({ apps: ['*'] }), denied, 'db');
      expect(r.text).toMatch(/never enterable/);
      expect(r.code).toBe(4403);
      expect(await execCreateCount(deniedId, since)).toBe(0);
    });

    it('checks the policy again against the app the resolved container names (defence in depth)', async () => {
      // A resolver that went wrong: asked for one app, it answers with a container of a denied one.
      const backends = (b.broker as unknown as { backends: Backends }).backends;
      const resolve = backends.resolve.bind(backends);
      backends.resolve = async (t) => {
        const c = await resolve(t);
        return Object.assign(Object.create(Object.getPrototypeOf(c) as object) as object, c, { app: 'entry' }) as typeof c;
      };
      try {
        const since = Date.now();
        const r = await refused(await b.mint({ apps: [own] }), own, 'api');
        expect(r.text).toMatch(/never enterable/);
        expect(r.code).toBe(4403);
        expect(await execCreateCount(ids['own']!, since)).toBe(0);
      } finally {
        backends.resolve = resolve;
      }
    });

    it('enters a container by its one name (so the refusals above mean something)', async () => {
      const since = Date.now();
      const c = await WireClient.connect(b.wsUrl, { 'access-token': await b.mint({ apps: [own] }), 'app-name': own, 'proc-name': 'api', 'instance-no': '1' });
      c.send(1, '80 24');
      c.type('exit\r');
      await c.closed;
      expect(new TextDecoder().decode(c.closeMessage()!.content)).toMatch(/exited with code 0/);
      expect(await execCreateCount(ids['own']!, since)).toBeGreaterThanOrEqual(1);
    });
  });
});

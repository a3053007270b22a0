import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHosts } from '../../broker/docker/hosts.js';
import { Backends } from '../../broker/backend/backends.js';
import { DockerBackend } from '../../broker/docker/docker-backend.js';
import { createLogger } from '../../broker/log.js';
import { EntryError } from '../../broker/errors.js';
import { docker, TestContainers, uniqueApp } from '../helpers/containers.js';

describe('finding the container by labels', () => {
  const containers = new TestContainers();
  const resolver = resolverOf(connectHosts([{ name: 'local', url: 'unix:///var/run/docker.sock' }], 'auto', docker));
  const app = uniqueApp();
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    ids['web1'] = await containers.entry(app, 'web', 1);
    ids['compose'] = await containers.start({
      labels: { 'com.docker.compose.project': app, 'com.docker.compose.service': 'worker', 'com.docker.compose.container-number': '2' },
    });
    await containers.entry(app, 'twin', 1);
    await containers.entry(app, 'twin', 1);
    await containers.start({ labels: { 'entry.app': app, 'entry.proc': 'stopped', 'entry.instance': '1' }, stopped: true });
    // A stopped leftover beside a running replacement is not an ambiguity.
    await containers.start({ labels: { 'entry.app': app, 'entry.proc': 'web', 'entry.instance': '1' }, stopped: true });
  });
  afterAll(() => containers.removeAll());

  async function failure(proc: string, instance = '1'): Promise<EntryError> {
    try {
      await resolver.resolve({ app, proc, instance });
    } catch (err) {
      return err as EntryError;
    }
    throw new Error('resolved, expected a failure');
  }

  it('resolves Entry labels to the one running container', async () => {
    const c = await resolver.resolve({ app, proc: 'web', instance: '1' });
    expect(c.id).toBe(ids['web1']);
    expect(c.state).toBe('running');
  });

  it('resolves Docker Compose labels (project / service / container-number)', async () => {
    const c = await resolver.resolve({ app, proc: 'worker', instance: '2' });
    expect(c.id).toBe(ids['compose']);
  });

  it('says not found when nothing matches', async () => {
    const e = await failure('web', '9');
    expect(e.code).toBe('ENTRY_NOT_FOUND');
    expect(e.message).toContain(`${app}/web/9`);
  });

  it('says ambiguous and names both when two running containers match', async () => {
    const e = await failure('twin');
    expect(e.code).toBe('ENTRY_AMBIGUOUS');
    expect(e.message.split(',').length).toBe(2);
  });

  it('says not running when the only match is stopped', async () => {
    const e = await failure('stopped');
    expect(e.code).toBe('ENTRY_NOT_RUNNING');
    expect(e.message).toMatch(/created|exited/);
  });
});

/** Resolution over these hosts, as the broker does it (their indexes, when they have one). */
function resolverOf(hosts: ConstructorParameters<typeof DockerBackend>[0]): Backends {
  return new Backends([new DockerBackend(hosts, createLogger('silent'), { indexed: false })]);
}

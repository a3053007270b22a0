import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerIndex, listLabelled } from '../../broker/docker/container-index.js';
import { connectHosts, type DockerHost } from '../../broker/docker/hosts.js';
import { createLogger } from '../../broker/log.js';
import { docker, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually } from '../helpers/sessions.js';

/**
 * After a miss the resolver asks the engine directly and puts what it finds into the index. The
 * engine's answer can be older than an event that comes while it is on its way: here the
 * listing sees a container running, and the container is removed before the answer is taken.
 * The index must not bring it back, or a new container of the same name becomes ambiguous.
 */
describe('a direct listing that races an event', () => {
  const containers = new TestContainers();
  const app = uniqueApp('lr');
  const target = { app, proc: 'web', instance: '1' };
  let hosts: DockerHost[];
  let index: ContainerIndex;

  beforeAll(async () => {
    hosts = connectHosts([{ name: 'local', url: `unix://${process.env['DOCKER_SOCKET'] ?? '/var/run/docker.sock'}` }], 'auto');
    index = new ContainerIndex(hosts, createLogger('silent'));
    await index.start();
    await eventually(async () => index.hosts[0]!.up, 'the index to be up');
  });
  afterAll(async () => {
    index?.stop();
    await containers.removeAll();
  });

  it('does not put back a container removed while the listing was on its way', async () => {
    const host = index.hosts[0]!;
    const gone = await containers.entry(app, 'web', 1);
    await eventually(async () => host.lookup(target).some((c) => c.id === gone && c.state === 'running'), 'the container in the index');
    const found = await host.confirm(async () => {
      const snapshot = await listLabelled(docker, undefined, target);
      // Removed after the engine answered, before the answer is taken: the index hears it first.
      await docker.getContainer(gone).remove({ force: true });
      await eventually(async () => host.lookup(target).length === 0, 'the removal in the index');
      return snapshot;
    });
    expect(found.map((c) => c.id)).toEqual([gone]);
    expect(host.lookup(target)).toEqual([]);
    // Its successor is the one container of that name.
    const next = await containers.entry(app, 'web', 1);
    await eventually(async () => host.lookup(target).length > 0, 'the new container in the index');
    expect(host.lookup(target).map((c) => c.id)).toEqual([next]);
  });

  it('still puts in what a listing found when nothing was heard of it meanwhile', async () => {
    const host = index.hosts[0]!;
    const other = { app, proc: 'worker', instance: '1' };
    const id = await containers.start({ labels: { 'entry.app': app, 'entry.proc': 'worker', 'entry.instance': '1' }, stopped: true });
    await eventually(async () => host.lookup(other).length === 1, 'the created container in the index');
    // As an index that missed the start: the listing's word is taken.
    const found = await host.confirm(async () => [{ ...(await listLabelled(docker, undefined, other))[0]!, state: 'running' }]);
    expect(found).toHaveLength(1);
    expect(host.lookup(other).map((c) => [c.id, c.state])).toEqual([[id, 'running']]);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerIndex } from '../../broker/docker/container-index.js';
import { connectHosts, type DockerHost } from '../../broker/docker/hosts.js';
import { Backends } from '../../broker/backend/backends.js';
import { DockerBackend } from '../../broker/docker/docker-backend.js';
import { createLogger } from '../../broker/log.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { TestEngine } from '../helpers/engine.js';

const CONTAINERS = 1_000;
const BATCH = 25;

function stats(samples: number[]): { p50: number; p95: number; mean: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { p50: at(0.5), p95: at(0.95), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

/**
 * Resolve time per connect with two hosts and 1,000 labelled containers: listing every host
 * (the resolver without an index) against the event-fed index. The containers are created,
 * not started (labels are all resolution looks at), on a Docker engine of the test's own.
 */
describe('resolving with 1,000 labelled containers on two hosts', () => {
  const engine = new TestEngine();
  const local = new TestContainers();
  const app = uniqueApp('bn');
  let listingHosts: DockerHost[];
  let indexedHosts: DockerHost[];
  let index: ContainerIndex;

  beforeAll(async () => {
    await engine.start();
    engine.loadImage('entry-demo:latest');
    const t0 = performance.now();
    for (let i = 0; i < CONTAINERS; i += BATCH) {
      await Promise.all(
        Array.from({ length: Math.min(BATCH, CONTAINERS - i) }, (_, k) =>
          engine.docker.createContainer({
            Image: 'entry-demo:latest',
            Labels: { 'entry.app': app, 'entry.proc': 'bulk', 'entry.instance': String(i + k + 1) },
            HostConfig: { NetworkMode: 'none' },
          }),
        ),
      );
    }
    console.log(`bench: created ${CONTAINERS} containers on host b in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // The targets: one running on each host.
    await local.entry(app, 'web', 1);
    const c = await engine.docker.createContainer({ Image: 'entry-demo:latest', Labels: { 'entry.app': app, 'entry.proc': 'web', 'entry.instance': '2' }, HostConfig: { NetworkMode: 'none' } });
    await c.start();
    const specs = [
      { name: 'a', url: 'unix:///var/run/docker.sock' },
      { name: 'b', url: engine.host },
    ];
    listingHosts = connectHosts(specs, 'auto');
    indexedHosts = connectHosts(specs, 'auto');
    index = new ContainerIndex(indexedHosts, createLogger('silent'));
    const t1 = performance.now();
    await index.start();
    console.log(`bench: index of both hosts synced in ${(performance.now() - t1).toFixed(0)} ms (${index.hosts.map((h) => `${h.name}: ${h.size}`).join(', ')} labelled containers)`);
  }, 240_000);

  afterAll(async () => {
    index?.stop();
    await local.removeAll();
    // Stopping the engine and dropping its data root removes the created containers at once.
    await engine.stop();
    await engine.destroy();
  }, 120_000);

  it('resolves from the index in a fraction of the listing time', async () => {
    const listing = resolverOf(listingHosts);
    const indexed = resolverOf(indexedHosts);
    const targets = [
      { app, proc: 'web', instance: '1' },
      { app, proc: 'web', instance: '2' },
    ];
    const measure = async (resolver: Backends, rounds: number) => {
      const samples: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const target = targets[i % 2]!;
        const t0 = performance.now();
        const c = await resolver.resolve(target);
        samples.push(performance.now() - t0);
        expect(c.host).toBe(target.instance === '1' ? 'a' : 'b');
      }
      return stats(samples);
    };
    await measure(listing, 5);
    await measure(indexed, 50);
    const byListing = await measure(listing, 60);
    const byIndex = await measure(indexed, 2_000);
    const fmt = (s: { p50: number; p95: number; mean: number }) => `p50 ${s.p50.toFixed(3)} ms, p95 ${s.p95.toFixed(3)} ms, mean ${s.mean.toFixed(3)} ms`;
    console.log(`bench: resolve per connect, 2 hosts, ${CONTAINERS} labelled containers — listing: ${fmt(byListing)}`);
    console.log(`bench: resolve per connect, 2 hosts, ${CONTAINERS} labelled containers — index:   ${fmt(byIndex)}`);
    console.log(`bench: index is ${(byListing.p50 / byIndex.p50).toFixed(0)}× faster at the median`);
    // Ratios, not milliseconds: the machine is shared, and both sides slow down together.
    expect(byIndex.p50).toBeLessThan(byListing.p50 / 10);
    // The tail too: a slow index lookup still beats a typical listing by far.
    expect(byIndex.p95).toBeLessThan(byListing.p50 / 5);
  }, 120_000);

  it('keeps a miss honest: a target that is nowhere is checked against the engines, then not found', async () => {
    const indexed = resolverOf(indexedHosts);
    await expect(indexed.resolve({ app, proc: 'nowhere', instance: '1' })).rejects.toMatchObject({ code: 'ENTRY_NOT_FOUND' });
    await expect(indexed.resolve({ app, proc: 'bulk', instance: '7' })).rejects.toMatchObject({ code: 'ENTRY_NOT_RUNNING' });
  });
});


/** Resolution over these hosts, as the broker does it (their indexes, when they have one). */
function resolverOf(hosts: ConstructorParameters<typeof DockerBackend>[0]): Backends {
  return new Backends([new DockerBackend(hosts, createLogger('silent'), { indexed: false })]);
}

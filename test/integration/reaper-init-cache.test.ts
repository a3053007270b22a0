import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ProcessReaper } from '../../broker/docker/process-reaper.js';
import { docker, TestContainers, uniqueApp } from '../helpers/containers.js';

/**
 * The reaper remembers each container's init PID (host mode), so that the signals and polls of
 * sessions ending together do not ask the engine each time. Containers come and go: the entries
 * of those no longer asked about must go too, or the cache grows with every container the
 * broker ever cleaned up after.
 */
describe("the reaper's cache of container inits", () => {
  const containers = new TestContainers();
  const app = uniqueApp('ic');
  const ids: string[] = [];

  beforeAll(async () => {
    for (let i = 1; i <= 3; i++) ids.push(await containers.entry(app, 'web', i));
  });
  afterEach(() => vi.useRealTimers());
  afterAll(() => containers.removeAll());

  const cached = (r: ProcessReaper) => (r as unknown as { visibleInit: Map<string, unknown> }).visibleInit;

  it('forgets containers that are gone and no longer asked about', async () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const reaper = new ProcessReaper(docker, 'auto');
    for (const id of ids) expect(await reaper.hostAnchor(id, randomUUID(), 0)).toBeGreaterThan(0);
    expect(cached(reaper).size).toBe(3);
    // Two of them are removed; the third still has sessions ending now and then.
    await Promise.all(ids.slice(0, 2).map((id) => docker.getContainer(id).remove({ force: true })));
    for (let minute = 0; minute < 3; minute++) {
      vi.advanceTimersByTime(30_000);
      expect(await reaper.hostAnchor(ids[2]!, randomUUID(), 0)).toBeGreaterThan(0);
      vi.advanceTimersByTime(30_000);
      expect(await reaper.hostAnchor(ids[2]!, randomUUID(), 0)).toBeGreaterThan(0);
    }
    expect([...cached(reaper).keys()]).toEqual([ids[2]]);
  });
});

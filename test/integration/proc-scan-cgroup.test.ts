import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { sessionMark } from '../../broker/backend/session-mark.js';
import { ProcReader, scanPidsWithMark } from '../../broker/docker/proc-walk.js';
import { docker, TestContainers, uniqueApp } from '../helpers/containers.js';

/**
 * A scan of a container's processes (host reap mode, no tree to walk) lists them from the
 * cgroup of a process of the container, its anchor, and lists them again when it met a process
 * that had ended. The anchor may be that process: the second list is still the container's.
 */
describe("a scan of a container's processes", () => {
  const containers = new TestContainers();
  let containerId = '';

  beforeAll(async () => {
    containerId = await containers.entry(uniqueApp('cg'), 'web', 1);
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await containers.removeAll();
  });

  it("reads only the container's processes again when its anchor ended during the scan", async () => {
    const exec = await docker.getContainer(containerId).exec({ Cmd: ['sleep', '317'] });
    await exec.start({ Detach: true });
    let anchor = 0;
    await vi.waitFor(
      async () => {
        anchor = (await exec.inspect()).Pid ?? 0;
        expect(anchor).toBeGreaterThan(0);
      },
      { timeout: 10_000, interval: 20 },
    );
    const read: number[] = [];
    const markOf = ProcReader.prototype.markOf;
    // Staged at the moment the scan reaches the anchor: it ends (reaped by the engine's shim),
    // so the scan meets it ended and the way to its cgroup goes with it.
    vi.spyOn(ProcReader.prototype, 'markOf').mockImplementation(function (this: ProcReader, pid, needle, inTree) {
      read.push(pid);
      if (pid === anchor) {
        process.kill(anchor, 'SIGKILL');
        const until = Date.now() + 5_000;
        while (existsSync(`/proc/${anchor}`) && Date.now() < until);
      }
      return markOf.call(this, pid, needle, inTree);
    });
    const found = await scanPidsWithMark(Buffer.from(`${sessionMark(randomUUID())}\0`), anchor);
    expect(found).toEqual([]);
    expect(read).toContain(anchor);
    expect(existsSync(`/proc/${anchor}`)).toBe(false);
    // This test's own process is the host's, not the container's.
    expect(read).not.toContain(process.pid);
  });
});

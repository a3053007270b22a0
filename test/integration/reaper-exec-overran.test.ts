import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXEC_SCAN_TIMEOUT_MS } from '../../broker/docker/exec-scan.js';
import { ProcessReaper } from '../../broker/docker/process-reaper.js';
import type { EntryError } from '../../broker/errors.js';
import { containerProcesses, docker, execCreateCount, TestContainers } from '../helpers/containers.js';
import { eventually } from '../helpers/sessions.js';

/*
 * Exec reap mode, a container short of CPU (`--cpus 0.1`): a scan's time grows with the marked
 * processes it reads and signals one by one, and a session of many processes makes the scan it
 * shares overrun EXEC_SCAN_TIMEOUT_MS. A light session sharing that scan must still be answered
 * (its half of the batch run again on its own), and before the heavy one's second scan gives up
 * (it runs beside that overdue scan rather than behind it).
 */

/** Processes of the heavy session: one mark's were read at about 10 a second at `--cpus 0.1`, so 240 need far more than the timeout. */
const HEAVY = 240;

describe('exec reap mode: a shared scan that overruns its time', () => {
  const containers = new TestContainers();
  let id: string;
  const heavy = `ov-${randomBytes(8).toString('hex')}`;
  const light = `ov-${randomBytes(8).toString('hex')}`;

  const spawn = async (session: string, script: string) => {
    const exec = await docker.getContainer(id).exec({ Cmd: ['sh', '-c', script], Env: [`ENTRY_SESSION=${session}`] });
    await exec.start({ Detach: true });
  };

  beforeAll(async () => {
    id = await containers.start({ labels: { 'entry.test.overran': '1' } });
    await spawn(heavy, `for i in $(seq ${HEAVY}); do sleep 1004 & done; exec sleep 1005`);
    await spawn(light, 'exec sleep 1006');
    await eventually(async () => (await containerProcesses(id)).filter((p) => /^sleep 100[456]$/.test(p.trim())).length === HEAVY + 2, 'the sleeps to run', 30_000);
    // Started at full speed, then short of CPU for the scans.
    await docker.getContainer(id).update({ NanoCpus: 100_000_000 });
  });
  afterAll(async () => {
    await containers.removeAll();
  });

  it('answers the light session of a batch whose scan overran, on its own and beside the heavy one', async () => {
    const reaper = new ProcessReaper(docker, 'exec');
    const since = Date.now();
    const t0 = performance.now();
    const at = (p: Promise<number>) =>
      p.then(
        (n) => ({ n, code: '', ms: performance.now() - t0 }),
        (e: EntryError) => ({ n: -1, code: e.code, ms: performance.now() - t0 }),
      );
    // The same turn: one batch of both marks, heavy first.
    const [h, l] = await Promise.all([at(reaper.signal(id, heavy, 0 as unknown as NodeJS.Signals, 0)), at(reaper.signal(id, light, 0 as unknown as NodeJS.Signals, 0))]);
    const execs = await execCreateCount(id, since);
    console.info(`reaper exec overran: light answered ${(l.ms / 1000).toFixed(2)} s (${l.n || l.code}), heavy failed ${(h.ms / 1000).toFixed(2)} s (${h.code}), ${execs} exec scans`);
    expect(l).toMatchObject({ n: 1, code: '' });
    expect(h).toMatchObject({ code: 'ENTRY_EXEC_FAILED' });
    // The whole batch, then each half once: the heavy one is not tried a third time.
    expect(execs).toBe(3);
    expect(h.ms).toBeGreaterThanOrEqual(2 * EXEC_SCAN_TIMEOUT_MS);
    expect(l.ms).toBeLessThan(h.ms);
    // Only counted: every sleep still runs.
    expect((await containerProcesses(id)).filter((p) => /^sleep 100[456]$/.test(p.trim()))).toHaveLength(HEAVY + 2);
  }, 60_000);
});

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessReaper } from '../../broker/docker/process-reaper.js';
import type { EntryError } from '../../broker/errors.js';
import { containerProcesses, docker, TestContainers } from '../helpers/containers.js';
import { eventually } from '../helpers/sessions.js';

/*
 * Exec reap mode, a container at its pids limit (a session forking without end is one): the
 * runtime cannot start the scan and answers 126, as it does for an image without /bin/sh. That
 * is a failure the next try may get past (once processes end), not ENTRY_CANNOT_REAP, which the
 * ledger's sweep takes as final and drops the session for.
 */

const LIMIT = 24;

describe('exec reap mode: a scan the runtime cannot start', () => {
  const containers = new TestContainers();
  let id: string;
  const session = `rt-${randomBytes(8).toString('hex')}`;

  beforeAll(async () => {
    id = await containers.start({ labels: { 'entry.test.runtime': '1' } });
    await docker.getContainer(id).update({ PidsLimit: LIMIT });
    // As many as the limit leaves room for beside the image's init and its sleep, and this shell.
    const exec = await docker.getContainer(id).exec({ Cmd: ['sh', '-c', `for i in $(seq ${LIMIT - 3}); do sleep 1007 & done; exec sleep 1008`], Env: [`ENTRY_SESSION=${session}`] });
    await exec.start({ Detach: true });
    await eventually(async () => (await containerProcesses(id)).length === LIMIT, 'the container at its pids limit', 30_000);
  });
  afterAll(async () => {
    await containers.removeAll();
  });

  it('fails the scan of a container at its pids limit as ENTRY_EXEC_FAILED, not ENTRY_CANNOT_REAP', async () => {
    const reaper = new ProcessReaper(docker, 'exec');
    const err = await reaper.signal(id, session, 0 as unknown as NodeJS.Signals, 0).then(
      (n) => ({ code: `answered ${n}`, message: '' }),
      (e: EntryError) => e,
    );
    console.info(`reaper exec runtime: a container at its pids limit: ${err.code}: ${err.message}`);
    expect(err.code).toBe('ENTRY_EXEC_FAILED');
    expect(err.message).toContain('OCI runtime exec failed');
  }, 60_000);
});

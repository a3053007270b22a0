import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_MARKS_PER_EXEC_SCAN } from '../../broker/docker/exec-scan.js';
import { ProcessReaper } from '../../broker/docker/process-reaper.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { containerProcesses, docker, execCreateCount, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import type { WireClient } from '../helpers/wire-client.js';

/*
 * Many sessions of one container losing their clients at once (a load balancer restart) with
 * the broker in exec reap mode, as it is for a remote engine: every process of every session
 * must end, with the scans shared between them rather than execs for each session at each step.
 * The execs are the engine's own count (its exec_create events for the container), from the
 * moment every session runs to the moment every session's clean-up is done (its ledger entry is
 * removed once its processes are confirmed gone, kept otherwise).
 */

const SESSIONS = 24;
const isLeftover = (args: string) => /^sleep 100[12]$/.test(args.trim());
/** The session entries in the broker's ledger (an entry rewritten is written beside it and renamed over it). */
const ledgerEntries = (b: TestBroker) => {
  const root = join(b.stateDir, 'sessions');
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .flatMap((d) => readdirSync(join(root, d.name)))
    .filter((name) => name.endsWith('.json'));
};

describe('exec reap mode: many sessions of one container dropped at once', () => {
  const containers = new TestContainers();
  const app = uniqueApp('rm');
  let b: TestBroker;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    b = await startTestBroker({}, { reapMode: 'exec' });
    ids['web'] = await containers.entry(app, 'web', 1);
    ids['nosh'] = await containers.entry(app, 'nosh', 1, 'entry-demo:nosh');
  });
  afterAll(async () => {
    await b?.stop();
    await containers.removeAll();
  });

  it(`ends every process of ${SESSIONS} sessions whose clients vanished together, in far fewer execs than sessions`, async () => {
    const token = await b.mint({ apps: [app] });
    const target = { app, proc: 'web', instance: 1 };
    // A shell with a running child, each.
    const clients: WireClient[] = await Promise.all(
      Array.from({ length: SESSIONS }, async () => {
        const c = await openCommand(b.wsUrl, token, target, ['sh', '-c', 'sleep 1002 & echo READY; exec sleep 1001']);
        await c.waitFor(() => c.stdoutText().includes('READY'), 'READY');
        return c;
      }),
    );
    // READY comes just before `exec sleep 1001` replaces the shell: wait for both sleeps.
    await eventually(async () => (await containerProcesses(ids['web']!)).filter(isLeftover).length === 2 * SESSIONS, 'the sessions to run two sleeps each', 20_000);

    expect(ledgerEntries(b)).toHaveLength(SESSIONS);
    const since = Date.now();
    for (const c of clients) c.ws.terminate();
    const doneMs = await eventually(async () => ledgerEntries(b).length === 0, "every session's clean-up done", 60_000);
    expect((await containerProcesses(ids['web']!)).filter(isLeftover)).toEqual([]);
    expect(b.logs.filter((l) => l.includes('could not end the session processes'))).toEqual([]);
    const execs = await execCreateCount(ids['web']!, since);
    console.info(`reaper exec mass drop: ${SESSIONS} sessions, every clean-up done in ${(doneMs / 1000).toFixed(2)} s, ${execs} exec scans`);
    // One session's clean-up alone is two scans (SIGHUP, then the check that nothing is left):
    // 48 for these without sharing; shared, the first scans run alone and the rest in a few.
    expect(execs).toBeGreaterThan(0);
    expect(execs).toBeLessThanOrEqual(SESSIONS / 2);
  }, 180_000);

  it('fails every session of a scan that cannot run (no sh in the image) with ENTRY_CANNOT_REAP, in fewer scans than sessions', async () => {
    const n = 6;
    const token = await b.mint({ apps: [app] });
    const clients = await Promise.all(Array.from({ length: n }, (_, i) => openCommand(b.wsUrl, token, { app, proc: 'nosh', instance: 1 }, ['/bin/busybox', 'sleep', `${1300 + i}`])));
    await eventually(async () => (await containerProcesses(ids['nosh']!)).filter((p) => /sleep 13\d\d/.test(p)).length === n, 'the sleeps to run', 20_000);
    const warned = () => b.logs.filter((l) => l.includes('could not end the session processes'));
    const since = Date.now();
    for (const c of clients) c.ws.terminate();
    await eventually(async () => warned().length === n, `${n} warnings`, 30_000);
    // One each, each with the reason: the scan's failure reached every session that shared it.
    const sessions = warned().map((l) => JSON.parse(l) as { session: string; error: { code: string } });
    expect(new Set(sessions.map((s) => s.session)).size).toBe(n);
    expect(sessions.map((s) => s.error.code)).toEqual(Array.from({ length: n }, () => 'ENTRY_CANNOT_REAP'));
    const execs = await execCreateCount(ids['nosh']!, since);
    console.info(`reaper exec mass drop: ${n} sessions in an image without sh, ${execs} exec scans`);
    expect(execs).toBeGreaterThan(0);
    expect(execs).toBeLessThan(n);
  }, 60_000);

  it(`runs a scan of the most marks it takes (${MAX_MARKS_PER_EXEC_SCAN}), of the longest session ids, through the engine`, async () => {
    const reaper = new ProcessReaper(docker, 'exec');
    const sessions = Array.from({ length: MAX_MARKS_PER_EXEC_SCAN }, () => `rm-${randomBytes(32).toString('hex')}`.slice(0, 64));
    const since = Date.now();
    const counts = await Promise.all(sessions.map((id) => reaper.signal(ids['web']!, id, 0 as unknown as NodeJS.Signals, 0)));
    expect(counts).toEqual(sessions.map(() => 0));
    expect(await execCreateCount(ids['web']!, since)).toBe(1);
  }, 60_000);
});

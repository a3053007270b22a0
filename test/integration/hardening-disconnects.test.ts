import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReapMode } from '../../broker/docker/process-reaper.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { inPool, summaryLine, timedEcho, type Target } from '../helpers/hardening.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import { WireClient } from '../helpers/wire-client.js';

/**
 * Abrupt disconnects in the middle of `sleep 1000` and of `cat` with its stdin open, ten at a
 * time against one container, in both reap modes: after the kill grace `docker top` must show
 * none of the sessions' processes.
 */

const KILL_GRACE_MS = 300;
const BATCH = 10;

/** What a session runs, and how it was started. */
type Kind = 'sleep-argv' | 'cat-argv' | 'sleep-shell' | 'cat-tty';
const KINDS: Kind[] = ['sleep-argv', 'cat-argv', 'sleep-shell', 'cat-tty'];
/** How the client vanishes: ws.terminate(), a destroyed socket, or a TCP reset. */
type Drop = 'terminate' | 'destroy' | 'reset';
const DROPS: Drop[] = ['terminate', 'destroy', 'reset'];

/** A process a session of this suite started, as `docker top` shows its command line. */
const isSessionProcess = (args: string) =>
  args === 'sleep 1000' || args === 'cat' || args === 'bash' || args.startsWith('sh -c echo READY') || args.includes('command -v bash');
const isSleep = (args: string) => args === 'sleep 1000';
const isCat = (args: string) => args === 'cat';

interface ModeFigures {
  disconnects: number;
  sleeps: number;
  cats: number;
  probeBytesSent: number;
  probeBytesEchoed: number;
  cleanupMs: number;
  leaked: number;
  /** Disconnects after which the broker was seen serving a new client. */
  survived: number;
}

const figures: Partial<Record<ReapMode, ModeFigures>> = {};
const rssBefore = process.memoryUsage().rss;

/** Opens one session of `kind` and resolves once its process is known to run. */
async function openRunning(b: TestBroker, token: string, target: Target, kind: Kind, i: number, f: ModeFigures): Promise<WireClient> {
  switch (kind) {
    case 'sleep-argv': {
      const c = await openCommand(b.wsUrl, token, target, ['sh', '-c', 'echo READY; exec sleep 1000']);
      await c.waitFor(() => c.stdoutText().includes('READY'), 'READY before sleep');
      return c;
    }
    case 'sleep-shell': {
      // The original protocol: a shell, typed into one character per message.
      const c = await WireClient.connect(b.wsUrl, { 'access-token': token, 'app-name': target.app, 'proc-name': target.proc, 'instance-no': String(target.instance) });
      c.send(1, '80 24');
      // The quotes keep the typed echo from containing READY: it appears only when run.
      c.type('echo RE""ADY; sleep 1000\r');
      await c.waitFor(() => /READY/.test(c.stdoutText()), 'READY from the shell');
      return c;
    }
    case 'cat-argv': {
      const c = await openCommand(b.wsUrl, token, target, ['cat']);
      const probe = `probe-${i}\n`;
      c.send(0, probe);
      f.probeBytesSent += probe.length;
      await c.waitFor(() => c.stdoutText().includes(probe), 'cat echoing the probe');
      f.probeBytesEchoed += probe.length;
      return c;
    }
    case 'cat-tty': {
      const c = await openCommand(b.wsUrl, token, target, ['cat'], true);
      const probe = `probe-${i}`;
      c.send(0, `${probe}\r`);
      f.probeBytesSent += probe.length;
      // Once from the terminal's echo, once from cat itself.
      await c.waitFor(() => c.stdoutText().split(probe).length - 1 >= 2, 'cat echoing the probe on the TTY');
      f.probeBytesEchoed += probe.length;
      return c;
    }
  }
}

function drop(c: WireClient, how: Drop): void {
  const socket = (c.ws as unknown as { _socket: Socket })._socket;
  if (how === 'terminate') c.ws.terminate();
  else if (how === 'destroy') socket.destroy();
  else socket.resetAndDestroy();
}

for (const [mode, total] of [
  ['host', 100],
  ['exec', 20],
] as const) {
  describe(`abrupt disconnects, ${mode} reap mode`, () => {
    const containers = new TestContainers();
    const app = uniqueApp('hd');
    const target = { app, proc: 'web', instance: 1 };
    let b: TestBroker;
    let token: string;
    let containerId: string;

    beforeAll(async () => {
      b = await startTestBroker({ 'kill-grace': KILL_GRACE_MS }, { reapMode: mode });
      containerId = await containers.entry(app, 'web', 1);
      token = await b.mint({ apps: [app] });
    });
    afterAll(async () => {
      await b.stop();
      await containers.removeAll();
    });

    it(`leaves no process behind after ${total} dropped clients (${total / 2} mid sleep 1000, ${total / 2} mid cat)`, async () => {
      const f: ModeFigures = { disconnects: 0, sleeps: 0, cats: 0, probeBytesSent: 0, probeBytesEchoed: 0, cleanupMs: -1, leaked: -1, survived: 0 };
      figures[mode] = f;
      const plan = Array.from({ length: total }, (_, i) => ({ i, kind: KINDS[i % KINDS.length]!, how: DROPS[Math.floor(i / KINDS.length) % DROPS.length]! }));
      for (let start = 0; start < total; start += BATCH) {
        const batch = plan.slice(start, start + BATCH);
        const clients = await inPool(batch, BATCH, ({ i, kind }) => openRunning(b, token, target, kind, i, f));
        // The processes really run, and `docker top` names them the way the check below expects.
        const top = await containerProcesses(containerId);
        const wantSleeps = batch.filter((s) => s.kind.startsWith('sleep')).length;
        const wantCats = batch.filter((s) => s.kind.startsWith('cat')).length;
        expect(top.filter(isSleep).length, 'sleep 1000 visible in docker top').toBeGreaterThanOrEqual(wantSleeps);
        expect(top.filter(isCat).length, 'cat visible in docker top').toBeGreaterThanOrEqual(wantCats);
        f.sleeps += wantSleeps;
        f.cats += wantCats;
        batch.forEach(({ how }, k) => drop(clients[k]!, how));
        f.disconnects += batch.length;
      }
      const droppedAt = Date.now();
      let leftovers: string[] = [];
      try {
        await eventually(
          async () => {
            leftovers = (await containerProcesses(containerId)).filter(isSessionProcess);
            return leftovers.length === 0;
          },
          'no session process left in the container',
          KILL_GRACE_MS + (mode === 'host' ? 10_000 : 30_000),
        );
      } catch {
        // Reported below with the list of what is left.
      }
      f.cleanupMs = Date.now() - droppedAt;
      f.leaked = leftovers.length;
      expect(leftovers, 'processes left in the container').toEqual([]);
      await eventually(async () => b.broker.sessionCount === 0, 'every session to end in the broker', 10_000);
      // The broker still serves.
      await timedEcho(b.wsUrl, token, target);
      f.survived = f.disconnects;
      expect(f.probeBytesEchoed).toBe(f.probeBytesSent);
    }, 180_000);
  });
}

afterAll(() => {
  const host = figures.host;
  const exec = figures.exec;
  const modes = [host, exec].filter((m): m is ModeFigures => m !== undefined);
  console.log(
    summaryLine('hardening-disconnects', {
      inputs: modes.reduce((n, m) => n + m.disconnects, 0),
      faults_survived: modes.reduce((n, m) => n + m.survived, 0),
      bytes_lost: modes.reduce((n, m) => n + (m.probeBytesSent - m.probeBytesEchoed), 0),
      processes_leaked: modes.reduce((n, m) => n + Math.max(m.leaked, 0), 0),
      // The broker runs inside the test process here: this is that process's growth.
      rss_growth_mb: ((process.memoryUsage().rss - rssBefore) / 1048576).toFixed(1),
      rss_of: 'test-process',
      host: host ? `${host.disconnects}(sleep=${host.sleeps},cat=${host.cats},cleanup_ms=${host.cleanupMs},leaked=${host.leaked})` : 'not-run',
      exec: exec ? `${exec.disconnects}(sleep=${exec.sleeps},cat=${exec.cats},cleanup_ms=${exec.cleanupMs},leaked=${exec.leaked})` : 'not-run',
    }),
  );
});

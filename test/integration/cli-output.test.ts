import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { CLI } from '../helpers/cli.js';
import { awaitFile, containerProcesses, TestContainers, touchIn, uniqueApp } from '../helpers/containers.js';
import { eventually } from '../helpers/sessions.js';
import { WireClient } from '../helpers/wire-client.js';

/** Runs a shell pipeline; resolves with its stdout, stderr and status. */
function bash(script: string, env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Resident memory of a process, in MiB. */
function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

describe('the enter CLI when its output is closed or slow', () => {
  const containers = new TestContainers();
  const app = uniqueApp('out');
  let b: TestBroker;
  let env: Record<string, string>;
  let admin = '';
  let containerId = '';

  beforeAll(async () => {
    b = await startTestBroker();
    containerId = await containers.entry(app, 'web', 1);
    env = { ENTRY_BROKER: b.url, ENTRY_TOKEN: await b.mint({ apps: [app] }), ENTRY_CONFIG_DIR: '/nonexistent' };
    admin = await b.mint({ roles: ['entry-admin'] }, { user: 'out-overseer' });
  });
  afterAll(async () => {
    await b.stop();
    await containers.removeAll();
  });

  const sessionIdOf = async (user: string) => {
    const res = await fetch(`${b.url}/api/sessions`, { headers: { authorization: `Bearer ${admin}` } });
    return ((await res.json()) as { sessions: Array<{ id: string; user: string }> }).sessions.find((s) => s.user === user)?.id;
  };

  it('enter … -- yes | head -c 5: stops quietly with status 141 and ends the remote command', async () => {
    const r = await bash(`node ${CLI} ${app} web 1 -- sh -c 'exec yes entry-pipe' | head -c 5; echo " \${PIPESTATUS[0]}"`, env);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('entry 141\n');
    await eventually(async () => !(await containerProcesses(containerId)).some((p) => p.includes('entry-pipe')), 'the remote yes to be gone');
  }, 30_000);

  /**
   * `enter … -- <command> | <a reader asleep 8 s, then taking 16 KiB every 50 ms>` for `user`.
   * Output that fits in the pipe and the client's socket has all left the broker while the
   * reader sleeps past the broker's close handshake wait (5 s); then the CLI acknowledges what
   * it reads while most of it still waits in its socket. `meanwhile` runs while it does.
   */
  async function readLate(user: string, command: string, meanwhile = async () => undefined) {
    const token = await b.mint({ apps: [app] }, { user });
    const reader = 'sleep 8; n=0; while c=$(head -c 16384 | wc -c); [ "$c" -gt 0 ]; do n=$((n+c)); sleep 0.05; done; echo "$n"';
    const run = bash(`node ${CLI} ${app} web 1 -- ${command} | { ${reader}; }; echo "status \${PIPESTATUS[0]}"`, { ...env, ENTRY_TOKEN: token });
    await meanwhile();
    const r = await run;
    const lost = b.logs.filter((l) => l.includes(`"user":"${user}"`) && /connection lost/.test(l));
    return { ...r, lost };
  }
  const SEQ_25000_BYTES = 25_000 * 6 - 11_106;

  it('enter … -- seq … | (paused past the exit, then slow): every byte, status 0, and no reconnect', async () => {
    const r = await readLate('late-reader', 'seq 1 25000');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${SEQ_25000_BYTES}\nstatus 0\n`);
    expect(r.lost).toEqual([]);
  }, 60_000);

  it('a session ended by an administrator while its reader is paused: every byte before the end, then why, and no reconnect', async () => {
    const user = 'late-kicked';
    const r = await readLate(user, "sh -c 'seq 1 25000; exec sleep 1033'", async () => {
      // Its output written: the shell has become the sleep.
      await eventually(async () => (await containerProcesses(containerId)).some((p) => p.trim() === 'sleep 1033'), 'the output to be written');
      const id = await sessionIdOf(user);
      const res = await fetch(`${b.url}/api/sessions/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } });
      expect(res.status).toBe(202);
    });
    expect(r.stderr).toMatch(/^enter: session ended by an administrator/);
    expect(r.stdout).toBe(`${SEQ_25000_BYTES}\nstatus 255\n`);
    expect(r.lost).toEqual([]);
  }, 60_000);

  it('enter … -- seq … > /dev/full: says the output could not be written, fails with 255, and ends the remote command', async () => {
    const r = await bash(`node ${CLI} ${app} web 1 -- sh -c 'exec seq 1 100000000 # entry-full' > /dev/full; echo "status \${PIPESTATUS[0]}"`, env);
    expect(r.stderr).toMatch(/^enter: writing the output failed: ENOSPC/);
    expect(r.stdout).toBe('status 255\n');
    await eventually(async () => !(await containerProcesses(containerId)).some((p) => p.includes('entry-full')), 'the remote seq to be gone');
  }, 30_000);

  it('enter watch <id> | head -c 5: stops quietly with status 141', async () => {
    const user = await WireClient.connect(b.wsUrl, { 'access-token': await b.mint({ apps: [app] }, { user: 'piped' }), 'app-name': app, 'proc-name': 'web', 'instance-no': '1' });
    try {
      user.type('echo READY\r');
      await user.waitFor(() => user.stdoutText().includes('READY\r\n'), 'the shell');
      const id = await sessionIdOf('piped');
      const watch = bash(`node ${CLI} watch ${id} | head -c 5; echo " \${PIPESTATUS[0]}"`, { ...env, ENTRY_TOKEN: admin });
      await user.waitFor(() => user.stdoutText().includes('out-overseer is watching'), 'the banner');
      user.type('for i in $(seq 1 200); do echo "watched line $i"; sleep 0.02; done\r');
      const r = await watch;
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^.{5} 141\n$/s);
    } finally {
      user.ws.terminate();
    }
  }, 30_000);

  it('enter watch reads no faster than its stdout takes: memory stays bounded while the reader is stopped', async () => {
    // The watched session: 200 MB of output, through the CLI into /dev/null, once the watch is on.
    const go = `/tmp/flood-${uniqueApp()}`;
    const watched = spawn(process.execPath, [CLI, app, 'web', '1', '--', 'sh', '-c', `${awaitFile(go)}; head -c 200000000 /dev/zero; sleep 30`], {
      env: { ...process.env, ...env, ENTRY_TOKEN: await b.mint({ apps: [app] }, { user: 'flooding' }) },
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    let watcher: ReturnType<typeof spawn> | undefined;
    try {
      let id: string | undefined;
      await eventually(async () => (id = await sessionIdOf('flooding')) !== undefined, 'the watched session');
      // A reader that never reads: the pipe fills, then everything waits in the watcher or not at all.
      watcher = spawn(process.execPath, [CLI, 'watch', id!], { env: { ...process.env, ...env, ENTRY_TOKEN: admin }, stdio: ['ignore', 'pipe', 'ignore'] });
      watcher.stdout!.pause();
      await eventually(async () => b.logs.some((l) => l.includes('"audit":"session.watch"') && l.includes(id!)), 'the watch to start');
      await touchIn(containerId, go);
      let peak = 0;
      const until = Date.now() + 12_000;
      while (Date.now() < until && watcher.exitCode === null) {
        peak = Math.max(peak, rssMiB(watcher.pid!));
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(peak).toBeGreaterThan(0);
      expect(peak).toBeLessThan(150);
      // And the flood did reach the watcher, filling its stdout pipe (64 KiB): bounded by waiting
      // for its reader, not by getting nothing.
      let read = 0;
      watcher.stdout!.on('data', (c: Buffer) => (read += c.length)).resume();
      await eventually(async () => read >= 64 * 1024, 'a full pipe of the output once read', 10_000);
    } finally {
      watcher?.kill('SIGKILL');
      watched.kill('SIGHUP');
      await new Promise((r) => watched.once('close', r));
    }
  }, 60_000);
});

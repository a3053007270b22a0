import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestType } from '../../proto/codec.js';
import { BACKENDS, flagsOf, type TargetHandle } from '../helpers/backends.js';
import { BrokerProcess, makeSigningKey, type SigningKey } from '../helpers/broker-process.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { TestRedis } from '../helpers/redis.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/** The ledger as it stands on disk: each broker process's directory and the session files in it (its socket apart). */
function ledgerOf(stateDir: string): Record<string, string[]> {
  const root = join(stateDir, 'sessions');
  const owners = readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory());
  // Without the `.next` file an entry is written to before it is renamed over the entry.
  return Object.fromEntries(owners.map((d) => [d.name, readdirSync(join(root, d.name)).filter((f) => !f.endsWith('.next'))]));
}

/** An entry's text; '' when it went between listing and reading (rewritten, or removed). */
function entryText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** The brokers' sockets beside the ledger (one per broker that runs, or that died). */
const socketsOf = (stateDir: string): string[] => readdirSync(join(stateDir, 'sessions')).filter((n) => n.endsWith('.alive'));

/**
 * A broker killed with `kill -9` ends nothing; the sessions it held are in its ledger, and the
 * next broker started on the same state directory ends their processes. A broker starting beside
 * a live one never touches that one's sessions.
 */
describe.each(BACKENDS.map((make) => make()))('a broker that dies leaves a ledger the next one acts on ($kind)', (backend) => {
  const app = uniqueApp('ld');
  const target = { app, proc: 'web', instance: 1 };
  let handle: TargetHandle;
  let key: SigningKey;
  let stateDir: string;
  const brokers: BrokerProcess[] = [];
  const start = async (): Promise<BrokerProcess> => {
    const b = await BrokerProcess.start({ flags: flagsOf(backend.settings()), key, stateDir });
    brokers.push(b);
    return b;
  };
  const running = async (marker: string): Promise<boolean> => (await handle.processes()).some((p) => p.includes(marker));

  beforeAll(async () => {
    handle = await backend.target(app, 'web', 1);
    key = makeSigningKey();
    stateDir = mkdtempSync(join(tmpdir(), 'entry-ledger-'));
  }, backend.setupTimeoutMs);
  afterAll(async () => {
    for (const b of brokers) await b.stop();
    await backend.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('ends the processes of a broker killed with kill -9 when the next broker starts, and logs each', async () => {
    const dead = await start();
    const token = await dead.mint({ apps: [app] });
    const s = await openCommand(dead.wsUrl, token, target, ['sh', '-c', 'echo up; sleep 1013']);
    await s.waitFor(() => s.stdoutText() === 'up\n', 'the session to start');
    dead.child.kill('SIGKILL');
    await dead.exited;
    s.ws.terminate();
    // What the dead broker left: its process runs on, and the ledger names its session.
    expect(await running('sleep 1013')).toBe(true);
    expect(Object.values(ledgerOf(stateDir)).flat()).toHaveLength(1);

    const next = await start();
    const tookMs = await eventually(async () => !(await running('sleep 1013')), "the dead broker's session processes to be ended", 30_000);
    await eventually(async () => next.logs.some((l) => l.includes('"leftover session ended"')), 'the log line');
    const line = JSON.parse(next.logs.find((l) => l.includes('"leftover session ended"'))!) as Record<string, unknown>;
    expect(line).toMatchObject({ user: 'alice', app, proc: 'web', instance: '1', backend: backend.kind });
    expect(next.logs.some((l) => l.includes('"sessions left by a broker that stopped without ending them: ending their processes"') && l.includes('"sessions":1'))).toBe(true);
    // The end its broker never recorded is in the audit trail.
    await eventually(async () => next.logs.some((l) => l.includes('"msg":"audit"') && l.includes('"how":"broker-died"')), 'the audit event');
    const audit = JSON.parse(next.logs.find((l) => l.includes('"how":"broker-died"'))!) as Record<string, unknown>;
    expect(audit).toMatchObject({ audit: 'session.end', user: 'alice', app, proc: 'web', instance: '1', source: '127.0.0.1', broker: next.id });
    expect(audit['durationMs']).toBeGreaterThan(0);
    // The dead broker's directory is gone; the new one's holds nothing.
    await eventually(async () => Object.values(ledgerOf(stateDir)).flat().length === 0, 'the entry to be forgotten');
    expect(Object.keys(ledgerOf(stateDir))).toHaveLength(1);
    console.log(`broker-death (${backend.kind}): the leftover process was gone ${tookMs} ms after the next broker listened`);
    // The dead broker's socket went with its directory.
    expect(socketsOf(stateDir)).toHaveLength(1);
    await next.stop();
    // A broker that stops cleanly leaves nothing behind.
    expect(ledgerOf(stateDir)).toEqual({});
    expect(socketsOf(stateDir)).toEqual([]);
  }, 90_000);

  /**
   * A session of `live` running `cat`; a broker started beside it on the same state directory
   * (claims are made before a broker listens: by then it has looked at the ledger) must leave
   * it, and its ledger entry, alone. Returns that broker, and ends the session.
   */
  const startBesideLiveSession = async (live: BrokerProcess): Promise<BrokerProcess> => {
    const s = await openCommand(live.wsUrl, await live.mint({ apps: [app] }), target, ['cat']);
    s.send(RequestType.PLAIN, 'one\n');
    await s.waitFor(() => s.stdoutText() === 'one\n', 'the first echo');
    const before = ledgerOf(stateDir);
    expect(Object.values(before).flat()).toHaveLength(1);
    const beside = await start();
    expect(beside.logs.some((l) => l.includes('leftover'))).toBe(false);
    s.send(RequestType.PLAIN, 'two\n');
    await s.waitFor(() => s.stdoutText() === 'one\ntwo\n', 'the session to go on');
    for (const [owner, files] of Object.entries(before)) expect(ledgerOf(stateDir)[owner]).toEqual(files);
    s.send(RequestType.STDIN_EOF);
    await s.closed;
    return beside;
  };

  it('leaves the sessions of a live broker on the same state directory alone', async () => {
    const live = await start();
    const beside = await startBesideLiveSession(live);
    await eventually(async () => Object.values(ledgerOf(stateDir)).flat().length === 0, 'the ended session to leave the ledger');
    await beside.stop();
    await live.stop();
    expect(ledgerOf(stateDir)).toEqual({});
  }, 60_000);

  it('leaves alone the sessions of a live broker in another PID namespace, whose process /proc here does not show', async () => {
    // The same host name and state directory, another PID namespace: a container sharing the
    // host's network (and so its name) and a mounted state directory.
    const hidden = await BrokerProcess.start({ flags: flagsOf(backend.settings()), key, stateDir, launcher: ['unshare', '--pid', '--fork', '--mount-proc', '--kill-child'] });
    brokers.push(hidden);
    const beside = await startBesideLiveSession(hidden);
    await beside.stop();
    // unshare --fork ignores SIGTERM: its SIGKILL takes the broker down with it (--kill-child).
    hidden.child.kill('SIGKILL');
    await hidden.exited;
  }, 60_000);

  it('leaves alone the sessions of a live broker in another PID namespace when the state directory is too deep for a socket path', async () => {
    // <state dir>/sessions/<hash>.alive is past sun_path's 107 bytes.
    const deep = join(stateDir, 'd'.repeat(96 - stateDir.length - 1));
    expect(Buffer.byteLength(join(deep, 'sessions', `${'0'.repeat(16)}.alive`))).toBeGreaterThan(107);
    // As in a container: its owner name carries PID 1, which is another process in /proc here.
    const hidden = await BrokerProcess.start({ flags: flagsOf(backend.settings()), key, stateDir: deep, launcher: ['unshare', '--pid', '--fork', '--kill-child'] });
    brokers.push(hidden);
    const s = await openCommand(hidden.wsUrl, await hidden.mint({ apps: [app] }), target, ['sh', '-c', 'echo live; sleep 6060']);
    await s.waitFor(() => s.stdoutText() === 'live\n', 'the session to start');
    const before = ledgerOf(deep);
    expect(Object.values(before).flat()).toHaveLength(1);
    const beside = await BrokerProcess.start({ flags: flagsOf(backend.settings()), key, stateDir: deep });
    brokers.push(beside);
    // A sweep's worth of time after its start claims: the live session is neither claimed nor ended.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(beside.logs.filter((l) => l.includes('leftover'))).toEqual([]);
    expect(await running('sleep 6060')).toBe(true);
    for (const [owner, files] of Object.entries(before)) expect(ledgerOf(deep)[owner]).toEqual(files);
    // Both brokers' sockets are there, in the deep directory.
    expect(socketsOf(deep)).toHaveLength(2);
    await beside.stop();
    hidden.child.kill('SIGKILL');
    await hidden.exited;
    s.ws.terminate();
  }, 60_000);
});

/**
 * Brokers sharing Redis keep the ledger there: a broker that dies and never comes back (its
 * machine lost) has its sessions' processes ended by another, once its alive mark has lapsed.
 */
describe('brokers sharing Redis: another broker ends what a dead one left', () => {
  const containers = new TestContainers();
  const redis = new TestRedis();
  const app = uniqueApp('lr');
  const target = { app, proc: 'web', instance: 1 };
  /** Alive marks last 4 s (four TTLs), and the ledger is swept every second. */
  const flags = () => ['--redis-url', redis.url, '--session-ttl', '1000'];
  let containerId: string;
  const brokers: BrokerProcess[] = [];

  beforeAll(async () => {
    await redis.start();
    containerId = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    for (const b of brokers) await b.stop();
    await containers.removeAll();
    await redis.stop();
  });

  it('ends the processes of a broker killed with kill -9, from a broker that was running beside it', async () => {
    const key = makeSigningKey();
    const survivor = await BrokerProcess.start({ flags: flags(), key });
    const dead = await BrokerProcess.start({ flags: flags(), key });
    brokers.push(survivor, dead);
    const token = await dead.mint({ apps: [app] });
    const s = await openCommand(dead.wsUrl, token, target, ['sh', '-c', 'echo up; sleep 1015']);
    await s.waitFor(() => s.stdoutText() === 'up\n', 'the session to start');
    const onSurvivor = await openCommand(survivor.wsUrl, token, target, ['sh', '-c', 'echo up; sleep 1016']);
    await onSurvivor.waitFor(() => onSurvivor.stdoutText() === 'up\n', 'a session on the survivor');
    const running = async (marker: string) => (await containerProcesses(containerId)).some((p) => p.includes(marker));
    dead.child.kill('SIGKILL');
    await dead.exited;
    s.ws.terminate();
    expect(await running('sleep 1015')).toBe(true);

    const tookMs = await eventually(async () => !(await running('sleep 1015')), "the dead broker's session processes to be ended", 30_000);
    // Logged once the survivor has made sure they are gone, which may be a moment after they went.
    await eventually(async () => survivor.logs.some((l) => l.includes('"leftover session ended"')), 'the survivor to log the leftover session', 10_000);
    const line = survivor.logs.find((l) => l.includes('"leftover session ended"'));
    expect(JSON.parse(line!)).toMatchObject({ user: 'alice', app, backend: 'docker' });
    // The survivor's own session was never taken for a dead broker's.
    expect(await running('sleep 1016')).toBe(true);
    onSurvivor.send(RequestType.SIGNAL, 'TERM');
    await onSurvivor.closed;
    console.log(`broker-death (Redis): the dead broker's process was gone ${tookMs} ms after kill -9 (alive marks 4 s)`);
  }, 60_000);

  it('leaves the sessions of a broker cut off from Redis alone while it still answers, and ends them once it dies', async () => {
    const key = makeSigningKey();
    const link = new TcpProxy(redis.url);
    await link.start();
    try {
      const other = await BrokerProcess.start({ flags: flags(), key });
      const cutOff = await BrokerProcess.start({ flags: ['--redis-url', `redis://127.0.0.1:${link.port}`, '--session-ttl', '1000'], key });
      brokers.push(other, cutOff);
      const running = async () => (await containerProcesses(containerId)).some((p) => p.includes('sleep 1018'));
      // Any broker but the cut-off one may claim its ledger (the one of the test before runs too).
      const othersLogged = (text: string) => brokers.filter((b) => b !== cutOff).flatMap((b) => b.logs.filter((l) => l.includes(text)));
      const endedBefore = othersLogged('"leftover session ended"').length;
      const s = await openCommand(cutOff.wsUrl, await cutOff.mint({ apps: [app] }), target, ['sh', '-c', 'echo up; read line; echo "got $line"; exec sleep 1018']);
      await s.waitFor(() => s.stdoutText() === 'up\n', 'the session to start');
      // Redis refuses this broker alone for twice its alive mark; its clients and the other brokers still reach it.
      link.cut(8_000);
      await eventually(async () => othersLogged('still answers: its sessions are left to it').some((l) => l.includes(cutOff.id)), 'another broker to find it alive', 20_000);
      await eventually(async () => cutOff.logs.some((l) => l.includes('writing the session ledger again')), 'the cut-off broker back in Redis', 30_000);
      expect(othersLogged('"leftover session ended"')).toHaveLength(endedBefore);
      // The session went on throughout.
      s.type('hello\n');
      await s.waitFor(() => s.stdoutText().includes('got hello'), 'the session to answer');
      expect(await running()).toBe(true);
      // Its ledger is in Redis again: a death now is seen.
      cutOff.child.kill('SIGKILL');
      await cutOff.exited;
      s.ws.terminate();
      await eventually(async () => !(await running()), "the cut-off broker's session processes to be ended after it died", 30_000);
      await eventually(async () => othersLogged('"leftover session ended"').length === endedBefore + 1, 'its end to be logged');
    } finally {
      await link.stop();
    }
  }, 90_000);
});

/**
 * In exec mode a session's processes are found by a shell script run in its container: an
 * image without sh can never have them ended from inside, and its entry must not be tried again
 * at every sweep, nor claimed again at every start.
 */
describe.each(BACKENDS.map((make) => make()))("a dead broker's session in an image without sh, in exec mode ($kind)", (backend) => {
  const app = uniqueApp('ln');
  let stateDir: string;
  const brokers: BrokerProcess[] = [];

  beforeAll(async () => {
    await backend.target(app, 'nosh', 1, 'entry-demo:nosh');
    stateDir = mkdtempSync(join(tmpdir(), 'entry-ledger-nosh-'));
  }, backend.setupTimeoutMs);
  afterAll(async () => {
    for (const b of brokers) await b.stop();
    await backend.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('is said once as an error naming the session and dropped from the ledger, its end recorded: its processes end with the container', async () => {
    const key = makeSigningKey();
    const start = async (): Promise<BrokerProcess> => {
      const b = await BrokerProcess.start({ flags: [...flagsOf(backend.settings()), '--reap-mode', 'exec'], key, stateDir });
      brokers.push(b);
      return b;
    };
    const dead = await start();
    const s = await openCommand(dead.wsUrl, await dead.mint({ apps: [app] }), { app, proc: 'nosh', instance: 1 }, ['/bin/busybox', 'sh', '-c', 'echo up; exec /bin/busybox sleep 1235']);
    const entries = () => Object.entries(ledgerOf(stateDir)).flatMap(([owner, files]) => files.map((f) => entryText(join(stateDir, 'sessions', owner, f))));
    if (backend.kind === 'docker') {
      await s.waitFor(() => s.stdoutText() === 'up\n', 'the session to start');
      expect(entries()).toHaveLength(1);
    } else {
      // On Kubernetes a command starts through /bin/sh: the session fails (its end recorded),
      // and its clean-up cannot scan either, so its entry stays for the sweep.
      await s.closed;
      await eventually(async () => entries().some((e) => e.includes('"endRecorded":true')), 'the entry kept for the sweep');
    }
    dead.child.kill('SIGKILL');
    await dead.exited;
    s.ws.terminate();

    const next = await start();
    await eventually(async () => next.logs.some((l) => l.includes('"leftover session cannot be ended')), 'the error line');
    const said = next.logs.filter((l) => l.includes('leftover session'));
    expect(said).toHaveLength(1);
    expect(JSON.parse(said[0]!)).toMatchObject({ level: 'error', app, proc: 'nosh', backend: backend.kind });
    expect(said[0]).toMatch(/"session":"[0-9a-f-]{36}"/);
    expect(said[0]).toContain('ENTRY_CANNOT_REAP');
    expect(said[0]).toContain('/bin/sh');
    if (backend.kind === 'docker') {
      await eventually(async () => next.logs.some((l) => l.includes('"how":"broker-died"')), 'the audit event');
      expect(next.logs.find((l) => l.includes('"how":"broker-died"'))).toContain('cannot be ended from inside its container');
    }
    // Forgotten: nothing for a later sweep, or a later broker, to claim and try again.
    await eventually(async () => Object.values(ledgerOf(stateDir)).flat().length === 0, 'the entry to be dropped');
    await next.stop();
    const after = await start();
    expect(after.logs.filter((l) => l.includes('leftover') || l.includes('sessions left by'))).toEqual([]);
  }, 60_000);
});

/**
 * Brokers sharing Redis need not have the same Docker hosts: what a dead broker left on a host
 * is for a broker that has that host, whichever claims first.
 */
describe("brokers sharing Redis with different Docker hosts: a dead broker's session goes to one that has its host", () => {
  const containers = new TestContainers();
  const redis = new TestRedis();
  const app = uniqueApp('lh');
  let containerId: string;
  const brokers: BrokerProcess[] = [];
  /** Alive marks last 4 s (four TTLs), and the ledger is swept every second; `host` names the machine's engine. */
  const start = async (key: SigningKey, host: string): Promise<BrokerProcess> => {
    const b = await BrokerProcess.start({ flags: ['--redis-url', redis.url, '--session-ttl', '1000', '--docker-host', `${host}=unix:///var/run/docker.sock`], key });
    brokers.push(b);
    return b;
  };

  beforeAll(async () => {
    await redis.start();
    containerId = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    for (const b of brokers) await b.stop();
    await containers.removeAll();
    await redis.stop();
  });

  it('is never taken by a broker without its host, and is ended by one with it started later', async () => {
    const key = makeSigningKey();
    const without = await start(key, 'b');
    const dead = await start(key, 'a');
    const s = await openCommand(dead.wsUrl, await dead.mint({ apps: [app] }), { app, proc: 'web', instance: 1 }, ['sh', '-c', 'echo up; sleep 1019']);
    await s.waitFor(() => s.stdoutText() === 'up\n', 'the session to start');
    const running = async () => (await containerProcesses(containerId)).some((p) => p.includes('sleep 1019'));
    dead.child.kill('SIGKILL');
    await dead.exited;
    s.ws.terminate();
    // The dead broker's mark lapses within 4 s; the broker without its host sweeps every second meanwhile.
    await new Promise((r) => setTimeout(r, 7_000));
    expect(without.logs.filter((l) => l.includes('leftover') || l.includes('sessions left by'))).toEqual([]);
    expect(await running()).toBe(true);

    const withHost = await start(key, 'a');
    const tookMs = await eventually(async () => !(await running()), 'the session processes to be ended by the broker that has the host', 20_000);
    await eventually(async () => withHost.logs.some((l) => l.includes('"leftover session ended"')), 'its log line');
    console.log(`broker-death (Redis, hosts): ended ${tookMs} ms after a broker with the host started (it claims after a 4 s alive window)`);
  }, 60_000);
});

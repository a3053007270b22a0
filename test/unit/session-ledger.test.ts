import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LeftoverPlace } from '../../broker/backend/backend.js';
import { EntryError } from '../../broker/errors.js';
import { type LeftoverEnder, Leftovers } from '../../broker/ledger/leftovers.js';
import { currentOwner, fromEarlierBoot } from '../../broker/ledger/owner.js';
import { processStartTicks } from '../../broker/proc-stat.js';
import { aliveSocketPath, listenAlive } from '../../broker/ledger/alive-socket.js';
import { FileLedger } from '../../broker/ledger/file-ledger.js';
import { type LedgerEntry, placeKey } from '../../broker/ledger/session-ledger.js';
import { StoreLedger } from '../../broker/ledger/store-ledger.js';
import { MemoryStore } from '../../broker/store/memory-store.js';
import { createLogger } from '../../broker/log.js';

const BOOT = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const OTHER_BOOT = BOOT.replace(/^./, (c) => (c === '0' ? '1' : '0'));
/** This machine's prefix of owner names. */
const HERE = `${hostname()}.${BOOT}`;

function entry(session: string): LedgerEntry {
  return { session, user: 'alice', source: '127.0.0.1', app: 'demo', proc: 'web', instance: '1', place: { backend: 'docker', host: 'local', namespace: '', name: 'demo-web-1', id: 'c0ffee', container: '' }, startedAt: '2026-12-04T08:00:00.000Z' };
}

const uuid = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** The owner name of a process that has exited: its PID is free (or someone else's). */
function exitedOwner(): string {
  const r = spawnSync(process.execPath, ['-e', "process.stdout.write(require('fs').readFileSync('/proc/self/stat','utf8'))"]);
  const stat = r.stdout.toString();
  return `${HERE}.${stat.split(' ')[0]}.${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}`;
}

/**
 * The owner name of a broker that died in `root`: its process listened on its socket there and
 * was killed, so the file stays and nobody listens (bound by a relative path: `root` may be
 * too deep for a socket's full path).
 */
function deadOwner(root: string): string {
  mkdirSync(root, { recursive: true });
  const script = `
const fs = require('fs'), net = require('net'), crypto = require('crypto'), os = require('os');
const stat = fs.readFileSync('/proc/self/stat', 'utf8');
const owner = [os.hostname(), fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), process.pid, stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]].join('.');
net.createServer().listen(crypto.createHash('sha256').update(owner).digest('hex').slice(0, 16) + '.alive', () => {
  process.stdout.write(owner);
  process.kill(process.pid, 'SIGKILL');
});`;
  return spawnSync(process.execPath, ['-e', script], { cwd: root }).stdout.toString();
}

describe('owner names: only an earlier boot says, without a socket, that a broker is gone', () => {
  it('takes this process, and one that exited, as not shown gone (a broker in another PID namespace is not in /proc here)', () => {
    expect(fromEarlierBoot(currentOwner().name)).toBe(false);
    expect(fromEarlierBoot(exitedOwner())).toBe(false);
  });

  it('takes every process of an earlier boot as gone', () => {
    expect(fromEarlierBoot(`${hostname()}.${OTHER_BOOT}.${process.pid}.${processStartTicks('self')}`)).toBe(true);
  });

  it("never judges another host's broker (a state directory shared with other machines or containers)", () => {
    expect(fromEarlierBoot(`elsewhere.example.${OTHER_BOOT}.1.1`)).toBe(false);
  });

  it('never judges a name that is not an owner name', () => {
    expect(fromEarlierBoot('notes')).toBe(false);
    expect(fromEarlierBoot(`${HERE}.1`)).toBe(false);
  });
});

describe('the session ledger on disk', () => {
  let stateDir: string;
  const log = createLogger('silent');
  beforeEach(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'entry-ledger-unit-'));
  });
  afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

  const root = (): string => join(stateDir, 'sessions');
  const plant = (owner: string, files: Record<string, string>): void => {
    mkdirSync(join(root(), owner), { recursive: true });
    for (const [name, text] of Object.entries(files)) writeFileSync(join(root(), owner, name), text);
  };

  it('keeps a file per session in its own directory until the session is removed, and leaves nothing on close', async () => {
    const ledger = (await FileLedger.open(stateDir, log))!;
    await ledger.add(entry(uuid(1)));
    const own = currentOwner().name;
    expect(readdirSync(join(root(), own))).toEqual([`${uuid(1)}.json`]);
    expect(JSON.parse(readFileSync(join(root(), own, `${uuid(1)}.json`), 'utf8'))).toEqual(entry(uuid(1)));
    await ledger.remove(uuid(1));
    await ledger.remove(uuid(1));
    expect(readdirSync(join(root(), own))).toEqual([]);
    await ledger.close();
    expect(readdirSync(root())).toEqual([]);
  });

  it('never uses a session id that is not a UUID as a file name', async () => {
    const ledger = (await FileLedger.open(stateDir, log))!;
    await ledger.add(entry('../../etc/x'));
    expect(readdirSync(join(root(), currentOwner().name))).toEqual([]);
  });

  it("claims a dead broker's entries into its own directory, drops what it cannot read, and removes the dead one's directory", async () => {
    const dead = deadOwner(root());
    plant(dead, { [`${uuid(2)}.json`]: JSON.stringify(entry(uuid(2))), [`${uuid(3)}.json`]: '{"session":', 'notes.txt': 'kept' });
    const ledger = (await FileLedger.open(stateDir, log))!;
    const claimed = await ledger.claimOrphans();
    expect(claimed).toEqual([entry(uuid(2))]);
    expect(readdirSync(join(root(), currentOwner().name))).toEqual([`${uuid(2)}.json`]);
    // A file that is not an entry is not the ledger's to delete: the directory stays for it.
    expect(readdirSync(join(root(), dead))).toEqual(['notes.txt']);
    expect(await ledger.claimOrphans()).toEqual([]);
  });

  it("leaves a dead broker's entries on hosts it does not have for a broker that has them", async () => {
    const dead = deadOwner(root());
    const elsewhere: LedgerEntry = { ...entry(uuid(9)), place: { ...entry(uuid(9)).place, host: 'build-2' } };
    // Its place readable, the rest not an entry: still the business of the broker with that host.
    const brokenElsewhere = JSON.stringify({ place: { backend: 'docker', host: 'build-2' } });
    plant(dead, { [`${uuid(8)}.json`]: JSON.stringify(entry(uuid(8))), [`${uuid(9)}.json`]: JSON.stringify(elsewhere), [`${uuid(10)}.json`]: brokenElsewhere });
    const local = (await FileLedger.open(stateDir, log, [placeKey('docker', 'local')]))!;
    expect(await local.claimOrphans()).toEqual([entry(uuid(8))]);
    expect(readdirSync(join(root(), dead)).sort()).toEqual([`${uuid(9)}.json`, `${uuid(10)}.json`]);
    await local.remove(uuid(8));
    await local.close();
    // A broker with that host, later (a state directory shared by brokers of different hosts).
    const other = (await FileLedger.open(stateDir, log, [placeKey('docker', 'build-2')]))!;
    expect(await other.claimOrphans()).toEqual([elsewhere]);
    expect(existsSync(join(root(), dead))).toBe(false);
    await other.remove(uuid(9));
    await other.close();
  });

  it("leaves a dead broker's entry it could not read for the next sweep, rather than dropping it", async () => {
    const dead = deadOwner(root());
    plant(dead, {});
    // A file that cannot be read as one: a directory where the entry should be.
    mkdirSync(join(root(), dead, `${uuid(4)}.json`));
    const ledger = (await FileLedger.open(stateDir, log))!;
    expect(await ledger.claimOrphans()).toEqual([]);
    expect(readdirSync(join(root(), dead))).toEqual([`${uuid(4)}.json`]);
    expect(readdirSync(join(root(), currentOwner().name))).toEqual([]);
  });

  it('claims an entry its dead broker wrote but had not renamed into place, and drops a newer version of one that stands', async () => {
    const dead = deadOwner(root());
    plant(dead, {
      // Its first write, cut off by the death before the rename.
      [`${uuid(6)}.json.next`]: JSON.stringify(entry(uuid(6))),
      // A rewrite cut off the same way: the entry before it stands.
      [`${uuid(7)}.json`]: JSON.stringify(entry(uuid(7))),
      [`${uuid(7)}.json.next`]: '{"sess',
    });
    const ledger = (await FileLedger.open(stateDir, log))!;
    const claimed = await ledger.claimOrphans();
    expect(claimed.map((e) => e.session).sort()).toEqual([uuid(6), uuid(7)].sort());
    expect(readdirSync(join(root(), currentOwner().name)).sort()).toEqual([`${uuid(6)}.json`, `${uuid(7)}.json`].sort());
    // Nothing left behind: the dead broker's directory is gone.
    expect(existsSync(join(root(), dead))).toBe(false);
  });

  it("leaves a live broker's entries where they are", async () => {
    // This process's parent stands for another broker that runs.
    const live = `${HERE}.${process.ppid}.${processStartTicks(process.ppid)}`;
    plant(live, { [`${uuid(4)}.json`]: JSON.stringify(entry(uuid(4))) });
    const ledger = (await FileLedger.open(stateDir, log))!;
    expect(await ledger.claimOrphans()).toEqual([]);
    expect(readdirSync(join(root(), live))).toEqual([`${uuid(4)}.json`]);
  });

  it('asks a broker its socket first: one listening lives whatever /proc here shows (another PID namespace), one refusing is gone', async () => {
    // By /proc this name is dead: the process exited. Its socket listens: a broker in another PID namespace.
    const elsewhere = exitedOwner();
    plant(elsewhere, { [`${uuid(12)}.json`]: JSON.stringify(entry(uuid(12))) });
    const server = await listenAlive(aliveSocketPath(root(), elsewhere)!);
    // By /proc this name lives (this process's parent); its socket file is there, and nobody listens.
    const refusing = `${HERE}.${process.ppid}.${processStartTicks(process.ppid)}`;
    plant(refusing, { [`${uuid(13)}.json`]: JSON.stringify(entry(uuid(13))) });
    // A process that listened there and was killed: the socket file stays, nobody listens.
    const path = aliveSocketPath(root(), refusing)!;
    const killed = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`]);
    await new Promise<void>((r) => killed.stdout.once('data', () => r()));
    killed.kill('SIGKILL');
    await new Promise<void>((r) => killed.once('exit', () => r()));
    expect(existsSync(path)).toBe(true);
    try {
      const ledger = (await FileLedger.open(stateDir, log))!;
      expect(await ledger.claimOrphans()).toEqual([entry(uuid(13))]);
      expect(readdirSync(join(root(), elsewhere))).toEqual([`${uuid(12)}.json`]);
      await ledger.close();
    } finally {
      server.close();
    }
  });

  it('reaches the sockets of a state directory too deep for a socket path: one listening lives whatever /proc here shows, one refusing is gone', async () => {
    // <state dir>/sessions/<hash>.alive is past sun_path's 107 bytes.
    const shallow = stateDir;
    stateDir = join(shallow, 'd'.repeat(100));
    expect(Buffer.byteLength(join(root(), `${'0'.repeat(16)}.alive`))).toBeGreaterThan(107);
    // By /proc this name is dead; its socket listens (bound through a short link to the directory).
    const elsewhere = exitedOwner();
    plant(elsewhere, { [`${uuid(17)}.json`]: JSON.stringify(entry(uuid(17))) });
    symlinkSync(root(), join(shallow, 'l'));
    const server = await listenAlive(aliveSocketPath(join(shallow, 'l'), elsewhere)!);
    const dead = deadOwner(root());
    plant(dead, { [`${uuid(18)}.json`]: JSON.stringify(entry(uuid(18))) });
    try {
      const ledger = (await FileLedger.open(stateDir, log))!;
      expect(await ledger.claimOrphans()).toEqual([entry(uuid(18))]);
      expect(readdirSync(join(root(), elsewhere))).toEqual([`${uuid(17)}.json`]);
      // Its own socket is there too, and goes on close.
      expect(readdirSync(root()).filter((n) => n.endsWith('.alive'))).toHaveLength(2);
      await ledger.close();
      expect(readdirSync(root()).filter((n) => n.endsWith('.alive'))).toHaveLength(1);
    } finally {
      server.close();
      stateDir = shallow;
    }
  });

  it('takes a broker without a socket for alive unless its name is of an earlier boot (/proc here does not show another PID namespace)', async () => {
    const unseen = exitedOwner();
    plant(unseen, { [`${uuid(19)}.json`]: JSON.stringify(entry(uuid(19))) });
    const rebooted = `${hostname()}.${OTHER_BOOT}.${process.pid}.${processStartTicks('self')}`;
    plant(rebooted, { [`${uuid(20)}.json`]: JSON.stringify(entry(uuid(20))) });
    const ledger = (await FileLedger.open(stateDir, log))!;
    expect(await ledger.claimOrphans()).toEqual([entry(uuid(20))]);
    expect(readdirSync(join(root(), unseen))).toEqual([`${uuid(19)}.json`]);
    await ledger.close();
  });

  it('leaves the entries of sessions it could not end to the next broker when it stops, saying it stopped', async () => {
    const first = (await FileLedger.open(stateDir, log))!;
    await first.add(entry(uuid(21)));
    await first.close();
    // Its socket is gone with it; its directory stays for the entry, marked.
    const own = currentOwner().name;
    expect(readdirSync(join(root(), own)).sort()).toEqual([`${uuid(21)}.json`, 'stopped']);
    // The next broker (this process stands for it under another name, of this boot) claims it.
    const parts = own.split('.');
    const stopped = [...parts.slice(0, -2), String(Number(parts.at(-2)) + 1), parts.at(-1)].join('.');
    renameSync(join(root(), own), join(root(), stopped));
    const next = (await FileLedger.open(stateDir, log))!;
    expect(await next.claimOrphans()).toEqual([entry(uuid(21))]);
    expect(existsSync(join(root(), stopped))).toBe(false);
    await next.remove(uuid(21));
    await next.close();
  });

  it('makes its directory again when it was removed from under it', async () => {
    const ledger = (await FileLedger.open(stateDir, log))!;
    rmSync(join(root(), currentOwner().name), { recursive: true });
    await ledger.add(entry(uuid(14)));
    expect(readdirSync(join(root(), currentOwner().name))).toEqual([`${uuid(14)}.json`]);
  });

  it('is off, and says so, where its directory cannot be made', async () => {
    const lines: string[] = [];
    writeFileSync(join(stateDir, 'file'), '');
    expect(await FileLedger.open(join(stateDir, 'file'), createLogger('info', (l) => lines.push(l)))).toBeUndefined();
    expect(lines.join('\n')).toContain('session ledger off');
  });
});

describe('leftover sessions are ended until done', () => {
  let stateDir: string;
  beforeEach(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'entry-leftovers-unit-'));
  });
  afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

  /** An ender that answers from a script: each call takes the next answer. */
  function scripted(answers: Array<boolean | Error>): LeftoverEnder & { calls: string[] } {
    const calls: string[] = [];
    return {
      calls,
      endLeftovers(_place: LeftoverPlace, session: string) {
        calls.push(session);
        const a = answers.shift();
        return a instanceof Error ? Promise.reject(a) : Promise.resolve(a ?? true);
      },
    };
  }

  it("ends a dead broker's sessions at start and forgets each once ended", async () => {
    const dead = deadOwner(join(stateDir, 'sessions'));
    mkdirSync(join(stateDir, 'sessions', dead));
    writeFileSync(join(stateDir, 'sessions', dead, `${uuid(6)}.json`), JSON.stringify(entry(uuid(6))));
    const ledger = (await FileLedger.open(stateDir, createLogger('silent')))!;
    const ender = scripted([true]);
    const ended: Array<[string, string]> = [];
    const leftovers = new Leftovers(ledger, ender, 10, createLogger('silent'), 60_000, (e, how) => ended.push([e.session, how]));
    await leftovers.start();
    await leftovers.sweep();
    expect(ender.calls).toEqual([uuid(6)]);
    expect(leftovers.size).toBe(0);
    // Its end, which the dead broker never recorded, is told.
    expect(ended).toEqual([[uuid(6), 'ended']]);
    await leftovers.stop();
    expect(readdirSync(join(stateDir, 'sessions'))).toEqual([]);
  });

  it("keeps a session whose processes could not be ended, on disk too, and tries again on the next sweep", async () => {
    const ledger = (await FileLedger.open(stateDir, createLogger('silent')))!;
    const ender = scripted([new EntryError('ENTRY_DOCKER_UNAVAILABLE'), false]);
    const ended: string[] = [];
    const leftovers = new Leftovers(ledger, ender, 10, createLogger('silent'), 60_000, (e) => ended.push(e.session));
    await leftovers.start();
    await leftovers.record(entry(uuid(7)));
    await leftovers.ended(entry(uuid(7)), false);
    await leftovers.sweep();
    expect(leftovers.size).toBe(1);
    expect(readdirSync(join(stateDir, 'sessions', currentOwner().name))).toEqual([`${uuid(7)}.json`]);
    await leftovers.sweep();
    expect(ender.calls).toEqual([uuid(7), uuid(7)]);
    expect(leftovers.size).toBe(0);
    // This broker's own session: its end was recorded when it ended.
    expect(ended).toEqual([]);
    expect(readdirSync(join(stateDir, 'sessions', currentOwner().name))).toEqual([]);
    await leftovers.stop();
  });

  it('keeps a session on a host this broker does not have, for a broker that has it, and says so once', async () => {
    const lines: string[] = [];
    const log = createLogger('debug', (l) => lines.push(l));
    const ledger = (await FileLedger.open(stateDir, log))!;
    const unknown = new EntryError('ENTRY_NOT_FOUND', 'no docker host named "gone"');
    const leftovers = new Leftovers(ledger, scripted([unknown, unknown]), 10, log);
    await leftovers.record(entry(uuid(8)));
    await leftovers.ended(entry(uuid(8)), false);
    await leftovers.sweep();
    await leftovers.sweep();
    expect(leftovers.size).toBe(1);
    const said = lines.filter((l) => l.includes('a host or cluster this broker does not have'));
    expect(said.map((l) => (JSON.parse(l) as { level: string }).level)).toEqual(['warn', 'debug']);
    await leftovers.stop();
    // Kept on disk, for the next broker, which the directory tells this one stopped.
    expect(readdirSync(join(stateDir, 'sessions', currentOwner().name)).sort()).toEqual([`${uuid(8)}.json`, 'stopped']);
  });

  it("drops a dead broker's session whose processes cannot be ended from inside its container, says so once as an error, and records its end", async () => {
    const dead = deadOwner(join(stateDir, 'sessions'));
    mkdirSync(join(stateDir, 'sessions', dead));
    writeFileSync(join(stateDir, 'sessions', dead, `${uuid(21)}.json`), JSON.stringify(entry(uuid(21))));
    const lines: string[] = [];
    const log = createLogger('debug', (l) => lines.push(l));
    const ledger = (await FileLedger.open(stateDir, log))!;
    const ender = scripted([new EntryError('ENTRY_CANNOT_REAP', 'no /bin/sh'), true]);
    const ended: Array<[string, string]> = [];
    const leftovers = new Leftovers(ledger, ender, 10, log, 60_000, (e, how) => ended.push([e.session, how]));
    await leftovers.start();
    await leftovers.sweep();
    await leftovers.sweep();
    expect(ender.calls).toEqual([uuid(21)]);
    expect(leftovers.size).toBe(0);
    expect(ended).toEqual([[uuid(21), 'left-running']]);
    const said = lines.filter((l) => l.includes('leftover session'));
    expect(said).toHaveLength(1);
    expect(JSON.parse(said[0]!)).toMatchObject({ level: 'error', session: uuid(21), error: { code: 'ENTRY_CANNOT_REAP' } });
    expect(readdirSync(join(stateDir, 'sessions', currentOwner().name))).toEqual([]);
    await leftovers.stop();
  });

  it("does not record again the end of a session whose broker recorded it (only its clean-up failed)", async () => {
    const dead = deadOwner(join(stateDir, 'sessions'));
    mkdirSync(join(stateDir, 'sessions', dead));
    writeFileSync(join(stateDir, 'sessions', dead, `${uuid(15)}.json`), JSON.stringify({ ...entry(uuid(15)), endRecorded: true }));
    writeFileSync(join(stateDir, 'sessions', dead, `${uuid(16)}.json`), JSON.stringify(entry(uuid(16))));
    const ledger = (await FileLedger.open(stateDir, createLogger('silent')))!;
    const ended: string[] = [];
    const leftovers = new Leftovers(ledger, scripted([true, true]), 10, createLogger('silent'), 60_000, (e) => ended.push(e.session));
    await leftovers.start();
    await leftovers.sweep();
    expect(leftovers.size).toBe(0);
    expect(ended).toEqual([uuid(16)]);
    await leftovers.stop();
  });

  it('marks a kept session as one whose end is recorded, on disk, for whoever claims it later', async () => {
    const ledger = (await FileLedger.open(stateDir, createLogger('silent')))!;
    const leftovers = new Leftovers(ledger, scripted([]), 10, createLogger('silent'));
    await leftovers.record(entry(uuid(17)));
    await leftovers.ended(entry(uuid(17)), false);
    const onDisk = JSON.parse(readFileSync(join(stateDir, 'sessions', currentOwner().name, `${uuid(17)}.json`), 'utf8')) as LedgerEntry;
    expect(onDisk.endRecorded).toBe(true);
  });

  it('leaves an entry whole when writing it again fails, and writes a new version beside it before taking its place', async () => {
    const lines: string[] = [];
    const ledger = (await FileLedger.open(stateDir, createLogger('warn', (l) => lines.push(l))))!;
    const file = join(stateDir, 'sessions', currentOwner().name, `${uuid(20)}.json`);
    await ledger.add(entry(uuid(20)));
    const first = statSync(file).ino;
    // The new version cannot be written (as on a full disk): the entry on disk is the old one, whole.
    mkdirSync(`${file}.next`);
    await ledger.add({ ...entry(uuid(20)), endRecorded: true });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(entry(uuid(20)));
    expect(lines.some((l) => l.includes('session not in the ledger'))).toBe(true);
    rmSync(`${file}.next`, { recursive: true });
    // Written whole elsewhere and renamed over it: never truncated in place.
    await ledger.add({ ...entry(uuid(20)), endRecorded: true });
    expect(statSync(file).ino).not.toBe(first);
    expect((JSON.parse(readFileSync(file, 'utf8')) as LedgerEntry).endRecorded).toBe(true);
    expect(existsSync(`${file}.next`)).toBe(false);
    await ledger.remove(uuid(20));
  });

  it('gives up on an engine that never answers, within the grace and 30 s, and tries again at the next sweep', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const ledger = (await FileLedger.open(stateDir, createLogger('silent')))!;
      const hung: LeftoverEnder = { endLeftovers: () => new Promise<boolean>(() => undefined) };
      const leftovers = new Leftovers(ledger, hung, 10, createLogger('silent'));
      await leftovers.ended(entry(uuid(18)), false);
      const sweep = leftovers.sweep();
      await vi.advanceTimersByTimeAsync(30_010);
      await sweep;
      expect(leftovers.size).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });
});

/**
 * The in-memory store, able to fail alive marks (an outage as this broker sees it) and to lose a
 * claim's answer, and telling each alive mark it renewed: a claim only proceeds while the
 * claimer's own mark is fresh (renewed within two renewals), so a claim that must find
 * something is made right after a renewal, not after a pause a loaded machine may stretch.
 */
class WatchedStore extends MemoryStore {
  failMarks = false;
  loseClaimAnswer = false;
  /** Writes and removals of ledger entries fail (a blip between two renewals). */
  failLedgerCalls = false;
  private waiters: Array<() => void> = [];

  renewed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  override async markBrokerAlive(broker: string, ttlMs: number): Promise<boolean> {
    if (this.failMarks) throw new Error('connection lost');
    const was = await super.markBrokerAlive(broker, ttlMs);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    return was;
  }

  override async putLedgerEntry(broker: string, session: string, text: string): Promise<void> {
    if (this.failLedgerCalls) throw new Error('connection lost');
    return super.putLedgerEntry(broker, session, text);
  }

  override async removeLedgerEntry(broker: string, session: string): Promise<void> {
    if (this.failLedgerCalls) throw new Error('connection lost');
    return super.removeLedgerEntry(broker, session);
  }

  override async claimLedgers(broker: string, minOwnMarkMs: number, places?: readonly string[]): Promise<string[]> {
    const claimed = await super.claimLedgers(broker, minOwnMarkMs, places);
    if (!this.loseClaimAnswer) return claimed;
    // The claim is carried out in the store; only its answer fails to come back.
    this.loseClaimAnswer = false;
    throw new Error('connection lost');
  }
}

describe('the session ledger in the shared store', () => {
  const ALIVE_MS = 150;
  const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('claims only after reaching the store for a whole alive window, and again only a window after an outage', async () => {
    const store = new WatchedStore();
    const lines: string[] = [];
    const ledger = new StoreLedger(store, 'me', ALIVE_MS, createLogger('warn', (l) => lines.push(l)));
    try {
      // A broker that died: entries, and no alive mark.
      await store.putLedgerEntry('gone', uuid(9), JSON.stringify(entry(uuid(9))));
      expect(await ledger.claimOrphans()).toBeUndefined();
      await settle(ALIVE_MS + 50);
      await store.renewed();
      expect(await ledger.claimOrphans()).toEqual([entry(uuid(9))]);

      await store.putLedgerEntry('gone-too', uuid(10), JSON.stringify(entry(uuid(10))));
      store.failMarks = true;
      await vi.waitFor(() => expect(lines.join('\n')).toContain('alive mark not renewed'), { timeout: 2_000 });
      store.failMarks = false;
      const back = performance.now();
      expect(await ledger.claimOrphans()).toBeUndefined();
      // Claimed again at the first claim after a renewal that is a whole window after the outage.
      let claimed: LedgerEntry[] | undefined;
      for (let i = 0; i < 200 && claimed === undefined; i++) {
        await store.renewed();
        claimed = await ledger.claimOrphans();
        if (claimed === undefined) expect(performance.now() - back).toBeLessThan(ALIVE_MS * 20);
      }
      expect(performance.now() - back).toBeGreaterThanOrEqual(ALIVE_MS);
      expect(claimed).toEqual([entry(uuid(10))]);
    } finally {
      await ledger.close();
    }
  });

  it('writes an entry, and removes one, at the next renewal when the store failed the call', async () => {
    const store = new WatchedStore();
    const lines: string[] = [];
    const ledger = new StoreLedger(store, 'me', ALIVE_MS, createLogger('warn', (l) => lines.push(l)));
    try {
      await ledger.add(entry(uuid(51)));
      store.failLedgerCalls = true;
      await ledger.add(entry(uuid(52)));
      await ledger.remove(uuid(51));
      expect((await store.ledgerEntries('me')).map((t) => (JSON.parse(t) as LedgerEntry).session)).toEqual([uuid(51)]);
      store.failLedgerCalls = false;
      // The mark was never lost: the next renewal does what the failed calls left undone.
      await store.renewed();
      await vi.waitFor(async () => expect((await store.ledgerEntries('me')).map((t) => (JSON.parse(t) as LedgerEntry).session)).toEqual([uuid(52)]), { timeout: 2_000 });
      expect(lines.filter((l) => l.includes('written again once the store answers'))).toHaveLength(1);
      expect(lines.filter((l) => l.includes('removed once the store answers'))).toHaveLength(1);
    } finally {
      await ledger.close();
    }
  });

  it('removes what it still owes the store before it takes its mark down on close', async () => {
    const store = new WatchedStore();
    const ledger = new StoreLedger(store, 'me', ALIVE_MS, createLogger('silent'));
    await ledger.add(entry(uuid(53)));
    store.failLedgerCalls = true;
    await ledger.remove(uuid(53));
    store.failLedgerCalls = false;
    await ledger.close();
    // Nothing left for another broker to claim as a dead broker's session.
    expect(await store.ledgerEntries('me')).toEqual([]);
  });

  it('writes its entries again into a store that lost them (restarted without its data)', async () => {
    const store = new MemoryStore();
    const lines: string[] = [];
    const ledger = new StoreLedger(store, 'me', ALIVE_MS, createLogger('warn', (l) => lines.push(l)));
    await ledger.add(entry(uuid(19)));
    // What a restart without persistence does: the mark and the entries are gone.
    await store.markBrokerAlive('me', 0);
    await store.removeLedgerEntry('me', uuid(19));
    await vi.waitFor(() => expect(lines.join('\n')).toContain('writing the session ledger again'), { timeout: 2_000 });
    await ledger.close();
    await store.markBrokerAlive('other', 60_000);
    expect(await store.claimLedgers('other', 0)).toEqual([JSON.stringify(entry(uuid(19)))]);
  });

  it('ends what a claim moved to it when the claim\'s answer was lost, and not its own sessions', async () => {
    const store = new WatchedStore();
    const ledger = new StoreLedger(store, 'me', ALIVE_MS, createLogger('silent'));
    try {
      await ledger.add(entry(uuid(31)));
      await store.putLedgerEntry('gone', uuid(32), JSON.stringify(entry(uuid(32))));
      await settle(ALIVE_MS + 50);
      store.loseClaimAnswer = true;
      await store.renewed();
      await expect(ledger.claimOrphans()).rejects.toThrow('connection lost');
      expect((await store.ledgerEntries('me')).length).toBe(2);
      // The next claim hands over what it finds now and what the lost one moved.
      await store.putLedgerEntry('gone-too', uuid(33), JSON.stringify(entry(uuid(33))));
      await store.renewed();
      expect((await ledger.claimOrphans())?.map((e) => e.session).sort()).toEqual([uuid(32), uuid(33)]);
      expect(await ledger.claimOrphans()).toEqual([]);
    } finally {
      await ledger.close();
    }
  });

  it('gives the sessions of a lapsed broker back to it while it answers at its address, and claims them once it does not', async () => {
    const store = new WatchedStore();
    let holderAnswers = true;
    const asked: string[] = [];
    const lines: string[] = [];
    const probe = async (h: { broker: string; url: string }) => {
      asked.push(`${h.broker} ${h.url}`);
      return holderAnswers;
    };
    const ledger = new StoreLedger(store, 'me', ALIVE_MS, createLogger('warn', (l) => lines.push(l)), undefined, probe);
    try {
      const held: LedgerEntry = { ...entry(uuid(21)), holder: { broker: 'cut-off', url: 'http://10.0.0.7:8022' } };
      // Written by a broker that did not name itself: nobody to ask.
      const unnamed = entry(uuid(22));
      await store.putLedgerEntry('cut-off', held.session, JSON.stringify(held));
      await store.putLedgerEntry('cut-off', unnamed.session, JSON.stringify(unnamed));
      await settle(ALIVE_MS + 50);
      await store.renewed();
      expect(await ledger.claimOrphans()).toEqual([unnamed]);
      expect(asked).toEqual(['cut-off http://10.0.0.7:8022']);
      expect(lines.filter((l) => l.includes('still answers: its sessions are left to it'))).toHaveLength(1);
      // Given back, it is the holder's again: claimed by the next claim, when the holder is gone.
      holderAnswers = false;
      await store.renewed();
      expect(await ledger.claimOrphans()).toEqual([held]);
      expect(asked).toHaveLength(2);
      expect(await ledger.claimOrphans()).toEqual([]);
    } finally {
      await ledger.close();
    }
  });

  it('never takes its own running session for an orphan when it comes back from a broker that had claimed it', async () => {
    const store = new WatchedStore();
    const ledger = new StoreLedger(store, 'me', ALIVE_MS, createLogger('silent'), undefined, async () => false);
    try {
      const mine: LedgerEntry = { ...entry(uuid(41)), holder: { broker: 'me', url: 'http://127.0.0.1:1' } };
      await ledger.add(mine);
      // Claimed by another broker while this one was cut off; that one died before giving it back.
      await store.removeLedgerEntry('me', mine.session);
      await store.putLedgerEntry('claimer', mine.session, JSON.stringify(mine));
      await settle(ALIVE_MS + 50);
      await store.renewed();
      expect(await ledger.claimOrphans()).toEqual([]);
      // It is in this broker's ledger again, for whoever claims it if this one dies.
      expect(await store.ledgerEntries('me')).toEqual([JSON.stringify(mine)]);
    } finally {
      await ledger.close();
    }
  });

  it('takes its alive mark down on close, so that what it leaves is claimed at once', async () => {
    const store = new MemoryStore();
    const ledger = new StoreLedger(store, 'leaving', 60_000, createLogger('silent'));
    await ledger.add(entry(uuid(11)));
    await store.markBrokerAlive('other', 60_000);
    expect(await store.claimLedgers('other', 0)).toEqual([]);
    await ledger.close();
    expect(await store.claimLedgers('other', 0)).toEqual([JSON.stringify(entry(uuid(11)))]);
  });
});
